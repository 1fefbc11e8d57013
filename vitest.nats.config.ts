import { defineConfig } from "vitest/config";

// The nats chardev's cluster test (`npm run test:nats`): three nats-server processes and a
// leader election, so it runs apart from `npm test`'s files, Node only.
export default defineConfig({
  test: {
    include: ["tests/nats_cluster.nats.ts"],
    testTimeout: 120_000,
    hookTimeout: 60_000,
    pool: "forks",
  },
});

import { defineConfig } from "vitest/config";

// End-to-end tests with real programs (a QEMU guest, a terminal, a browser): Node only, one
// file at a time (each boots or drives something heavy).
export default defineConfig({
  test: {
    include: ["tests/e2e/**/*.e2e.ts"],
    testTimeout: 300_000,
    hookTimeout: 300_000,
    pool: "forks",
    fileParallelism: false,
  },
});

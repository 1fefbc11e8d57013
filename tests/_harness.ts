// The test API every suite imports, so the same files run under Node, Deno and Bun. It is
// picked once, when this module loads:
// - Node: vitest itself.
// - Bun: `bun:test` (its describe/it/hooks/expect follow vitest's).
// - Deno: a thin describe/it/hooks layer over `Deno.test` (one Deno test per `it`, named
//   "describe > ... > it") and jest's standalone `expect`.
// Suites see vitest's types everywhere; only the subset below is offered, so a suite that
// needs more must add it here for all three runtimes.

import type * as Vitest from "vitest";

/** What a suite may import from here. */
export interface TestApi {
  describe: typeof Vitest.describe;
  it: typeof Vitest.it;
  test: typeof Vitest.test;
  expect: typeof Vitest.expect;
  beforeAll: typeof Vitest.beforeAll;
  afterAll: typeof Vitest.afterAll;
  beforeEach: typeof Vitest.beforeEach;
  afterEach: typeof Vitest.afterEach;
}

/** The runtime the suites run on: "node", "deno" or "bun". */
export const testRuntime: "node" | "deno" | "bun" = "Deno" in globalThis ? "deno" : "Bun" in globalThis ? "bun" : "node";

/** Per-test time limit where the runner has no config of its own (vitest.config.ts has the same). */
export const TEST_TIMEOUT_MS = 30_000;

// Specifiers other runtimes cannot resolve are kept out of static analysis (vite's, Deno's).
const BUN_TEST = "bun:test";
const JEST_EXPECT = "expect";

async function loadApi(): Promise<TestApi> {
  if (testRuntime === "bun") return bunApi(await import(/* @vite-ignore */ BUN_TEST));
  if (testRuntime === "deno") return denoApi(await import(/* @vite-ignore */ JEST_EXPECT));
  return await import("vitest");
}

// ---- Bun ----------------------------------------------------------------------------------

type Fn = (...args: any[]) => any;

/** `bun:test` has vitest's shape; it lacks `runIf`, which vitest suites use for "only on X". */
function bunApi(bun: Record<string, any>): TestApi {
  for (const name of ["describe", "it", "test"]) {
    const fn = bun[name];
    fn.runIf ??= (condition: unknown) => (condition ? fn : fn.skip);
  }
  return bun as unknown as TestApi;
}

// ---- Deno ---------------------------------------------------------------------------------

interface DenoTestDefinition {
  name: string;
  fn: () => Promise<void>;
  ignore?: boolean;
  only?: boolean;
  sanitizeOps?: boolean;
  sanitizeResources?: boolean;
}

type Hook = () => unknown;

/** One `describe` (the root is the file): its hooks and how many of its tests are left. */
interface Scope {
  readonly name: string;
  readonly parent: Scope | null;
  readonly beforeAll: Hook[];
  readonly afterAll: Hook[];
  readonly beforeEach: Hook[];
  readonly afterEach: Hook[];
  /** Tests under this scope that will run; afterAll runs once the last of them finishes. */
  pending: number;
  /** Set once beforeAll ran; holds its failure so every test of the scope reports it. */
  setUp: { error?: unknown } | null;
  readonly skip: boolean;
  readonly only: boolean;
}

function newScope(name: string, parent: Scope | null, mode: Mode = {}): Scope {
  return {
    name,
    parent,
    beforeAll: [],
    afterAll: [],
    beforeEach: [],
    afterEach: [],
    pending: 0,
    setUp: null,
    skip: (parent?.skip ?? false) || mode.skip === true,
    only: (parent?.only ?? false) || mode.only === true,
  };
}

interface Mode {
  skip?: boolean;
  only?: boolean;
}

/** Outermost first. */
function chainOf(scope: Scope): Scope[] {
  const chain: Scope[] = [];
  for (let s: Scope | null = scope; s; s = s.parent) chain.unshift(s);
  return chain;
}

async function runHooks(hooks: Hook[]): Promise<void> {
  for (const hook of hooks) await hook();
}

async function withTimeout(body: () => unknown, ms: number, name: string): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Test timed out in ${ms}ms: ${name}`)), ms);
  });
  try {
    await Promise.race([Promise.resolve().then(body), expired]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * vitest's `expect(value, message)`: jest's expect takes one argument, so a message is added
 * to the failure of whatever matcher follows.
 */
function withMessage(jestExpect: Fn): Fn {
  const wrap = (target: any, message: string): any =>
    new Proxy(target, {
      get(object, key, receiver) {
        const value = Reflect.get(object, key, receiver);
        if (typeof value === "function") {
          return (...args: unknown[]) => {
            try {
              const result = value.apply(object, args);
              if (result instanceof Promise) {
                return result.catch((error: unknown) => {
                  throw prefixed(error, message);
                });
              }
              return result;
            } catch (error) {
              throw prefixed(error, message);
            }
          };
        }
        return value !== null && typeof value === "object" ? wrap(value, message) : value;
      },
    });
  const prefixed = (error: unknown, message: string) => {
    if (error instanceof Error) error.message = `${message}\n\n${error.message}`;
    return error;
  };
  const expect = (actual: unknown, message?: string) => {
    const matchers = jestExpect(actual);
    return message === undefined ? matchers : wrap(matchers, message);
  };
  return Object.assign(expect, jestExpect);
}

function denoApi(jest: { expect: Fn; default?: Fn }): TestApi {
  const deno = (globalThis as unknown as { Deno: { test(definition: DenoTestDefinition): void } }).Deno;
  const root = newScope("", null);
  let current = root;

  const addTest = (name: string, fn: Fn | undefined, timeout: unknown, mode: Mode = {}) => {
    const scope = current;
    const skip = scope.skip || mode.skip === true || fn === undefined;
    const fullName = [...chainOf(scope).slice(1).map((s) => s.name), name].join(" > ");
    const ms = typeof timeout === "number" ? timeout : ((timeout as { timeout?: number } | undefined)?.timeout ?? TEST_TIMEOUT_MS);
    if (!skip) for (const s of chainOf(scope)) s.pending++;
    deno.test({
      name: fullName,
      ignore: skip,
      only: scope.only || mode.only === true,
      // vitest does not fail a test for a timer or handle that outlives it; neither do we.
      sanitizeOps: false,
      sanitizeResources: false,
      fn: async () => {
        const chain = chainOf(scope);
        let failure: { error: unknown } | null = null;
        let eachDone = 0;
        try {
          for (const s of chain) {
            if (!s.setUp) {
              s.setUp = {};
              try {
                await runHooks(s.beforeAll);
              } catch (error) {
                s.setUp.error = error;
              }
            }
            if (s.setUp.error !== undefined) throw s.setUp.error;
          }
          for (const s of chain) {
            await runHooks(s.beforeEach);
            eachDone++;
          }
          await withTimeout(() => fn!(), ms, fullName);
        } catch (error) {
          failure = { error };
        }
        // Cleanup runs innermost first, and only for scopes whose setup ran.
        for (const s of chain.slice(0, eachDone).reverse()) {
          try {
            await runHooks([...s.afterEach].reverse());
          } catch (error) {
            failure ??= { error };
          }
        }
        for (const s of [...chain].reverse()) {
          if (--s.pending > 0 || !s.setUp) continue;
          try {
            await runHooks([...s.afterAll].reverse());
          } catch (error) {
            failure ??= { error };
          }
        }
        if (failure) throw failure.error;
      },
    });
  };

  const addSuite = (name: string, body: Fn | undefined, mode: Mode = {}) => {
    const parent = current;
    current = newScope(name, parent, { ...mode, skip: mode.skip || body === undefined });
    try {
      const result = body?.();
      if (result instanceof Promise) throw new Error(`describe("${name}") must not be async under Deno`);
    } finally {
      current = parent;
    }
  };

  const it = Object.assign((name: string, fn?: Fn, timeout?: unknown) => addTest(name, fn, timeout), {
    skip: (name: string, fn?: Fn, timeout?: unknown) => addTest(name, fn, timeout, { skip: true }),
    only: (name: string, fn?: Fn, timeout?: unknown) => addTest(name, fn, timeout, { only: true }),
    todo: (name: string) => addTest(name, undefined, undefined, { skip: true }),
    skipIf: (condition: unknown) => (name: string, fn?: Fn, timeout?: unknown) => addTest(name, fn, timeout, { skip: Boolean(condition) }),
    runIf: (condition: unknown) => (name: string, fn?: Fn, timeout?: unknown) => addTest(name, fn, timeout, { skip: !condition }),
  });
  const describe = Object.assign((name: string, body?: Fn) => addSuite(name, body), {
    skip: (name: string, body?: Fn) => addSuite(name, body, { skip: true }),
    only: (name: string, body?: Fn) => addSuite(name, body, { only: true }),
    todo: (name: string) => addSuite(name, undefined, { skip: true }),
    skipIf: (condition: unknown) => (name: string, body?: Fn) => addSuite(name, body, { skip: Boolean(condition) }),
    runIf: (condition: unknown) => (name: string, body?: Fn) => addSuite(name, body, { skip: !condition }),
  });
  const hook = (kind: "beforeAll" | "afterAll" | "beforeEach" | "afterEach") => (fn: Hook) => {
    current[kind].push(fn);
  };

  return {
    describe: describe as unknown as TestApi["describe"],
    it: it as unknown as TestApi["it"],
    test: it as unknown as TestApi["test"],
    expect: withMessage(jest.expect ?? jest.default!) as unknown as TestApi["expect"],
    beforeAll: hook("beforeAll") as unknown as TestApi["beforeAll"],
    afterAll: hook("afterAll") as unknown as TestApi["afterAll"],
    beforeEach: hook("beforeEach") as unknown as TestApi["beforeEach"],
    afterEach: hook("afterEach") as unknown as TestApi["afterEach"],
  };
}

const api = await loadApi();

export const { describe, it, test, expect, beforeAll, afterAll, beforeEach, afterEach } = api;

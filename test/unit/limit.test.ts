import { describe, expect, it } from "vitest";
import { mapLimit } from "../../src/core/limit.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("mapLimit", () => {
  it("keeps the order of the input, whatever order the work ends in, and runs at most `limit` at once", async () => {
    let running = 0;
    let most = 0;
    const out = await mapLimit([30, 5, 20, 1, 10], async (ms) => {
      running++;
      most = Math.max(most, running);
      await sleep(ms);
      running--;
      return ms * 2;
    }, 2);
    expect(out).toEqual([60, 10, 40, 2, 20]);
    expect(most).toBe(2);
  });

  it("lets every started item finish before it throws the first failure", async () => {
    const finished: number[] = [];
    const err = await mapLimit([1, 2, 3], async (n) => {
      if (n === 1) throw new Error("one failed");
      await sleep(20);
      finished.push(n);
      return n;
    }, 3).catch((e: unknown) => e);
    expect((err as Error).message).toBe("one failed");
    expect(finished.sort()).toEqual([2, 3]);
  });
});

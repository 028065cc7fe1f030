import { describe, expect, it } from "vitest";
import { StoreError } from "../../src/core/errors.js";
import { withRetry } from "../../src/core/retry.js";

describe("nested retries", () => {
  it("do not multiply: an error an inner withRetry gave up on is not retried by the outer one", async () => {
    let calls = 0;
    const inner = () =>
      withRetry(
        async () => {
          calls++;
          throw new StoreError("down", { store: "s", status: 503 });
        },
        { attempts: 3, baseDelayMs: 1 },
      );
    await expect(withRetry(inner, { attempts: 3, baseDelayMs: 1 })).rejects.toThrow("down");
    expect(calls).toBe(3);
  });

  it("an outer retry still retries its own transient failures", async () => {
    let outer = 0;
    const result = await withRetry(
      async () => {
        if (++outer < 3) throw new StoreError("blip", { store: "s", status: 503 });
        return withRetry(async () => "ok", { attempts: 3, baseDelayMs: 1 });
      },
      { attempts: 3, baseDelayMs: 1 },
    );
    expect(result).toBe("ok");
    expect(outer).toBe(3);
  });
});

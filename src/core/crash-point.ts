/**
 * TEST-ONLY crash hook, used by the fault-injection suite (test/faults/) to prove that a crash at
 * the worst moments loses nothing. `PANTRI_TEST_CRASH_AT=<point>:<n>` makes the process kill
 * itself with SIGKILL the n-th time (default: the first) it reaches the named point. Nobody sets
 * it outside those tests; unset, a call is one string comparison.
 */
export type CrashPoint =
  | "after-upload-before-pointer"
  | "after-stage-before-commit"
  | "after-pointer-before-ignore"
  | "before-commit"
  | "mid-download"
  | "after-downloads-before-deletions"
  | "before-record";

const [armed = "", nth = "1"] = (process.env.PANTRI_TEST_CRASH_AT ?? "").split(":");
let reached = 0;

export function crashPoint(point: CrashPoint): void {
  if (point === armed && ++reached >= Number(nth)) process.kill(process.pid, "SIGKILL");
}

import { emptyResult, finish, type CommandResult } from "./result.js";
import type { Session } from "./session.js";

export interface AuthOptions {
  /** Only check the cached credential. */
  test?: boolean;
}

/** `pantri auth`: log in and cache the token, or (--test) check the cached one. */
export async function auth(session: Session, opts: AuthOptions = {}): Promise<CommandResult> {
  const result = emptyResult("auth");
  const { store } = await session.baseStore();
  result.details.store = store.description;
  if (opts.test) {
    if (!store.testAuth) {
      result.details.valid = true;
      result.details.note = `${store.description} uses no cached token`;
    } else {
      const valid = await store.testAuth();
      result.details.valid = valid;
      if (!valid) result.failed.push({ path: "", error: `no valid cached token for ${store.description}: run pantri auth` });
    }
    return finish(result);
  }
  if (!store.authenticate) {
    result.details.note = `${store.description} needs no authentication`;
    return finish(result);
  }
  const r = await store.authenticate();
  Object.assign(result.details, r);
  return finish(result);
}

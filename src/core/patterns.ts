import picomatch from "picomatch";

type Matcher = (relToShelf: string) => boolean;

// Patterns come from config and are matched against every file of every shelf: compile once.
const cache = new Map<string, Matcher>();

function compileOne(pattern: string): Matcher {
  let matcher = cache.get(pattern);
  if (matcher) return matcher;
  if (pattern.includes("/")) {
    // A leading "/" anchors to the shelf root, which shelf-relative matching already does; a
    // trailing "/" means "this folder", as in .gitignore, so it matches everything below it.
    let glob = pattern.startsWith("/") ? pattern.slice(1) : pattern;
    if (glob.endsWith("/")) glob += "**";
    const isMatch = glob === "" ? () => false : picomatch(glob, { dot: true });
    matcher = (rel) => isMatch(rel);
  } else {
    const isMatch = picomatch(pattern, { dot: true });
    matcher = (rel) => isMatch(rel.slice(rel.lastIndexOf("/") + 1));
  }
  cache.set(pattern, matcher);
  return matcher;
}

/**
 * One predicate for a list of globs (SPEC section 5): a pattern without "/" matches a file's
 * name at any depth, one with "/" matches the path relative to the shelf. Dotfiles are matched
 * like any other (`.DS_Store` and `._*` are default ignore patterns). Empty patterns match nothing.
 */
export function compilePatterns(patterns: string[]): Matcher {
  const matchers = patterns.filter((p) => p !== "").map(compileOne);
  if (matchers.length === 0) return () => false;
  return (relToShelf) => matchers.some((m) => m(relToShelf));
}

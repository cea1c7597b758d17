/** armbox's version, from package.json (bundled in: the same in Node and in a browser). */
import pkg from "../package.json" with { type: "json" };

export const VERSION: string = pkg.version;

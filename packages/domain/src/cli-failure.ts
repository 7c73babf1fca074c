/**
 * What a failing command prints: the message, its code and every error below it (cause chain, an
 * AggregateError's errors, cleanup failures attached as `suppressed`). One definition for every command-line
 * program: `dynasyn` (apps/cli), `ort-train`, `toyworld`, and the toy-world training and evaluation scripts
 * (`runCommand`). Here, in the leaf package, so that each can use it whatever it depends on.
 */
/** One line for the user: the message of a known error, else the error's own text without a stack. */
export function oneLine(e: unknown): string {
  return compact(e instanceof Error ? e.message : safeString(e)) || (e instanceof Error ? e.name : 'unknown error');
}

/** The first line of a message; '' when it has none. */
function compact(message: string): string {
  const lines = message
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  if (!lines.length) return '';
  // Messages like Prisma's ("Invalid `x()` invocation:" ... the reason) put the reason last.
  return lines[0]!.endsWith(':') && lines.length > 1 ? `${lines[0]} ${lines[lines.length - 1]}` : lines[0]!;
}

/** DYNASYN_DEBUG set to anything but empty, 0 or false: the environment's way of asking for `--debug`. */
export function debugFromEnv(env: NodeJS.ProcessEnv): boolean {
  const v = env.DYNASYN_DEBUG?.trim().toLowerCase();
  return !!v && v !== '0' && v !== 'false';
}

export const DEBUG_HINT = 'run with --debug for stack traces';

/**
 * What a failed command prints on stderr: the message (with its code), then one `caused by:` line per
 * error in the `cause` chain, AggregateError's `errors` indented below it. Without `debug` each message is
 * cut to one line and, with `hint`, the hint to --debug ends it; with `debug` messages are whole and each
 * error's stack follows it. `prefix` names the program (`dynasyn`, `ort-train`).
 */
export function formatFailure(e: unknown, { prefix, debug, hint }: { prefix: string; debug: boolean; hint: boolean }): string {
  const lines: string[] = [];
  const code = codeOf(e);
  const top = debug ? header(e, true) : `${oneLine(e)}${code ? ` [${code}]` : ''}`;
  lines.push(...prefixed(`${prefix}: `, top));
  if (debug) lines.push(...stackFrames(e, '  '));
  const seen = new Set<unknown>([e]);
  const walk = (err: unknown, indent: string, depth: number): void => {
    if (depth > 32) {
      lines.push(`${indent}caused by: ... (deeper causes left out)`);
      return;
    }
    for (const [label, child] of children(err)) {
      const at = label === 'caused by' ? indent : `${indent}  `; // an aggregate's errors and cleanup failures sit beneath it
      if (seen.has(child)) {
        lines.push(`${at}${label}: (the same error again: a cycle)`);
        continue;
      }
      seen.add(child);
      lines.push(...prefixed(`${at}${label}: `, header(child, debug)));
      if (debug) lines.push(...stackFrames(child, `${at}  `));
      walk(child, label === 'caused by' ? at : `${at}  `, depth + 1); // and an aggregated error's causes beneath it
    }
  };
  walk(e, '  ', 0);
  if (!debug && hint) lines.push(DEBUG_HINT);
  return `${lines.join('\n')}\n`;
}

/**
 * The errors below `e`: an AggregateError's `errors` (numbered), the `suppressed` errors of cleanup that ran
 * while `e` was on its way out (dynasyn's cleanUp attaches them: they never replace `e`), then its `cause`.
 */
function children(e: unknown): [string, unknown][] {
  if (!(e instanceof Error)) return [];
  const out: [string, unknown][] = [];
  const errors = (e as { errors?: unknown }).errors;
  if ((e instanceof AggregateError || e.name === 'AggregateError') && Array.isArray(errors)) {
    errors.forEach((x, i) => out.push([`error ${i + 1} of ${errors.length}`, x]));
  }
  const suppressed = (e as { suppressed?: unknown }).suppressed;
  if (Array.isArray(suppressed)) suppressed.forEach((x) => out.push(['then, while cleaning up', x]));
  if ('cause' in e && e.cause !== undefined) out.push(['caused by', e.cause]);
  return out;
}

const codeOf = (e: unknown): string | undefined => {
  const code = e !== null && typeof e === 'object' ? (e as { code?: unknown }).code : undefined;
  return typeof code === 'string' || typeof code === 'number' ? String(code) : undefined;
};

/** `Name [CODE]: message`, as Node prints coded errors (the message whole, or its first line); other values as text. */
function header(e: unknown, whole: boolean): string {
  if (!(e instanceof Error)) return whole ? safeString(e) : oneLine(e);
  const code = codeOf(e);
  const message = whole ? e.message : compact(e.message);
  return `${e.name}${code ? ` [${code}]` : ''}${message ? `: ${message}` : ''}`;
}

/** The `at ...` lines of a stack (its first lines repeat the message); a stack of another form whole. */
function stackFrames(e: unknown, indent: string): string[] {
  const stack = e instanceof Error && typeof e.stack === 'string' ? e.stack : undefined;
  if (!stack) return [];
  const lines = stack.split('\n');
  const first = lines.findIndex((l) => /^\s+at /.test(l));
  return (first < 0 ? lines : lines.slice(first)).map((l) => `${indent}${l.trim()}`);
}

/** `prefix` and the first line of `text`; further lines of a multi-line message indented beneath. */
function prefixed(prefix: string, text: string): string[] {
  const [first, ...rest] = text.split('\n');
  const pad = `${' '.repeat(prefix.length - prefix.trimStart().length)}    `;
  return [`${prefix}${first}`, ...rest.map((l) => `${pad}${l}`)];
}

function safeString(v: unknown): string {
  try {
    if (v !== null && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) return JSON.stringify(v);
    return String(v);
  } catch {
    return Object.prototype.toString.call(v);
  }
}

/**
 * Runs a command-line script's body (the toy-world training and evaluation scripts): a failure prints
 * formatFailure on stderr (whole, with stacks, on `--debug` or DYNASYN_DEBUG=1) and sets the exit code to 1.
 */
export async function runCommand(prefix: string, body: () => Promise<unknown>): Promise<void> {
  const debug = process.argv.includes('--debug') || debugFromEnv(process.env);
  if (debug) Error.stackTraceLimit = 100;
  try {
    await body();
  } catch (e) {
    process.stderr.write(formatFailure(e, { prefix, debug, hint: !debug }));
    process.exitCode = 1;
  }
}

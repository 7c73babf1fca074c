/**
 * A recipe: the chain of `toyworld-train` runs that made a bundle, each continuing the one before
 * (`--continue-from`), as one command: `toyworld-train --recipe recipes/toyworld.json`. The committed bundle
 * (models/toyworld) was made by nine runs over two days; its recipe replays them in order. Each stage is the
 * CLI itself in a child process (its own progress bars, checkpoints and resume), in its own work directory
 * under `--work`; a stage whose run finished is not run again, and one stopped resumes from its checkpoints, so
 * the command continues a chain stopped anywhere (Ctrl-C, a failure, `--minutes`) where it stopped.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface RecipeStage {
  /** What the stage does, for the progress lines ("diffusion +8,000 steps"). */
  name: string;
  /** The stage's `toyworld-train` flags; the recipe runner adds --work, --out and --continue-from. */
  args: string[];
}

export interface Recipe {
  description?: string;
  stages: RecipeStage[];
}

/** Flags each stage gets from the runner, never from the recipe. */
const RUNNER_FLAGS = ['--work', '--out', '--continue-from', '--recipe', '--no-resume', '--only-decoder', '--minutes'];

/** The package's own recipes (recipes/NAME.json), so `--recipe toyworld` works from any directory. */
export const RECIPES_DIR = fileURLToPath(new URL('../recipes/', import.meta.url));

/** A `--recipe` value: a file, or the name of one of the package's recipes ("toyworld"). */
export function recipeFile(value: string): string {
  const own = join(RECIPES_DIR, `${value}.json`);
  return /^[a-z0-9-]+$/i.test(value) && !existsSync(value) && existsSync(own) ? own : value;
}

/** A recipe file, validated: a clear error names the file and what is wrong with it. */
export function readRecipe(file: string): Recipe {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`cannot read the recipe ${file}: ${(err as Error).message}`, { cause: err });
  }
  const r = raw as Partial<Recipe>;
  if (!r || typeof r !== 'object' || !Array.isArray(r.stages) || r.stages.length === 0)
    throw new Error(`${file}: a recipe is {"stages": [{"name": ..., "args": [...]}, ...]} with at least one stage`);
  r.stages.forEach((s, i) => {
    const where = `${file}: stage ${i + 1}`;
    if (!s || typeof s.name !== 'string' || !s.name || !Array.isArray(s.args) || s.args.some((x) => typeof x !== 'string'))
      throw new Error(`${where} needs a "name" and "args" (an array of strings)`);
    const owned = s.args.filter((x) => RUNNER_FLAGS.includes(x.split('=')[0]!));
    if (owned.length) throw new Error(`${where} (${s.name}) gives ${owned.join(', ')}: the recipe runner sets those`);
  });
  return { ...(typeof r.description === 'string' ? { description: r.description } : {}), stages: r.stages };
}

/** Where stage `i` (0-based) works and writes its bundle; the last stage's bundle is the recipe's `out`. */
export function stagePaths(work: string, out: string, stages: number, i: number): { work: string; bundle: string } {
  const dir = join(work, `stage-${i + 1}`);
  return { work: dir, bundle: i === stages - 1 ? out : join(dir, 'bundle') };
}

/** Whether a stage's run finished (its state.json says done) and its bundle is there. */
export function stageDone(paths: { work: string; bundle: string }): boolean {
  const state = join(paths.work, 'state.json');
  if (!existsSync(state) || !existsSync(join(paths.bundle, 'model_index.json'))) return false;
  try {
    return (JSON.parse(readFileSync(state, 'utf8')) as { phase?: string }).phase === 'done';
  } catch {
    return false;
  }
}

export interface RecipeRun {
  recipe: Recipe;
  work: string;
  out: string;
  /** Flags every stage gets (--threads, --checkpoint-minutes, --debug). */
  common: string[];
  /** Stop by this time (ms since the epoch; `--minutes`): each stage gets the minutes left as its own --minutes. */
  deadline?: number;
  /** The toyworld-train entry point the stages run (its dist/cli.js). */
  cli: string;
  onMessage?: (line: string) => void;
}

/**
 * Runs the stages not yet finished, in order. Returns true when the last one finished; false when a stage stopped
 * before its end (Ctrl-C or its own --minutes: run the command again to continue). A stage that fails throws,
 * naming it.
 */
export async function runRecipe(o: RecipeRun): Promise<boolean> {
  const n = o.recipe.stages.length;
  for (const [i, stage] of o.recipe.stages.entries()) {
    const paths = stagePaths(o.work, o.out, n, i);
    const label = `stage ${i + 1} of ${n} (${stage.name})`;
    if (stageDone(paths)) {
      o.onMessage?.(`${label}: done before, ${paths.bundle}`);
      continue;
    }
    const from = i > 0 ? ['--continue-from', stagePaths(o.work, o.out, n, i - 1).bundle] : [];
    const left = o.deadline === undefined ? undefined : (o.deadline - Date.now()) / 60_000;
    if (left !== undefined && left < 0.001) {
      o.onMessage?.(`out of time before ${label}; run the same command again to continue`);
      return false;
    }
    const time = left === undefined ? [] : ['--minutes', left.toFixed(3)];
    const args = [...stage.args, ...from, '--work', paths.work, '--out', paths.bundle, ...o.common, ...time];
    o.onMessage?.(`${label}: toyworld-train ${args.join(' ')}`);
    const { code, signal } = await runChild(o.cli, args);
    if (signal) {
      o.onMessage?.(`${label} stopped (${signal}); run the same command again to continue from its last checkpoint`);
      return false;
    }
    if (code !== 0) throw new Error(`${label} failed (exit code ${code}); run the same command again to retry it`);
    if (!stageDone(paths)) {
      o.onMessage?.(`${label} stopped before its end; run the same command again to continue`);
      return false;
    }
  }
  return true;
}

/** The CLI in a child process, its output on ours; Ctrl-C reaches it too, and we wait for it to end. */
function runChild(cli: string, args: string[]): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolveExit, reject) => {
    const child = spawn(process.execPath, [cli, ...args], { stdio: 'inherit' });
    const ignore = () => {}; // the terminal's SIGINT reaches the child too: let it end, then say where the chain stands
    process.on('SIGINT', ignore);
    child.on('error', (err) => {
      process.off('SIGINT', ignore);
      reject(err);
    });
    child.on('exit', (code, signal) => {
      process.off('SIGINT', ignore);
      resolveExit({ code, signal });
    });
  });
}

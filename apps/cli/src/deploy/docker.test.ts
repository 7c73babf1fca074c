/**
 * docker/: no Docker engine runs here, so the Dockerfiles and the compose file are checked as files.
 * Dockerfiles: hadolint-like rules (explicit tags, non-root final stage, no ADD of URLs, `npm ci`, apt hygiene,
 * HEALTHCHECK) plus project rules (COPY sources exist and are in the build context, CMD runs a file the build
 * produces). Compose: the services of a local stack, healthchecks, depends_on conditions, Redis noeviction +
 * AOF, and every environment variable declared by the env schema of the app it configures (and accepted by it).
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { fileURLToPath } from 'node:url';
import { checkStageLease, stageLeaseSeconds } from '@dynasyn/config';
import { envSchema as apiEnvSchema } from '../../../api/src/env.js';
import { workerEnvSchema } from '../../../../packages/stages/src/worker-env.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
const read = (p: string) => readFileSync(path.join(root, p), 'utf8');

// compose files use YAML 1.1 merge keys (<<: *anchor) for shared environment blocks
const loadYaml = (s: string): unknown => parseYaml(s, { merge: true });

// ---------------------------------------------------------------------------------------------- Dockerfiles

interface Instruction {
  op: string;
  args: string;
  line: number;
}
interface Stage {
  from: string;
  name?: string;
  body: Instruction[];
}

/** Instructions with continuation lines joined and comments dropped, grouped by FROM into stages. */
function parseDockerfile(text: string): Stage[] {
  const out: Instruction[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const start = i;
    let l = lines[i]!;
    if (/^\s*(#|$)/.test(l)) continue;
    while (/\\\s*$/.test(l) && i + 1 < lines.length) {
      i++;
      const next = lines[i]!;
      if (/^\s*#/.test(next)) continue;
      l = l.replace(/\\\s*$/, ' ') + next.trim();
    }
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(l);
    if (!m) throw new Error(`line ${start + 1}: not an instruction: ${l}`);
    out.push({ op: m[1]!.toUpperCase(), args: m[2]!.trim(), line: start + 1 });
  }
  const stages: Stage[] = [];
  for (const ins of out) {
    if (ins.op === 'FROM') {
      const m = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
      if (!m) throw new Error(`line ${ins.line}: bad FROM ${ins.args}`);
      stages.push({ from: m[1]!, name: m[2], body: [] });
    } else if (ins.op !== 'ARG' || stages.length > 0) {
      if (stages.length === 0) throw new Error(`line ${ins.line}: ${ins.op} before FROM`);
      stages.at(-1)!.body.push(ins);
    }
  }
  return stages;
}

/** `ENV A=1 B=2` (and the legacy `ENV A 1`) as a record. */
function envOf(stage: Stage): Record<string, string> {
  const env: Record<string, string> = {};
  for (const ins of stage.body.filter((i) => i.op === 'ENV' || i.op === 'ARG')) {
    const pairs = ins.args.match(/[A-Za-z_][A-Za-z0-9_]*(=("[^"]*"|\S*))?/g) ?? [];
    if (ins.op === 'ENV' && !ins.args.includes('=')) {
      const [k, ...v] = ins.args.split(/\s+/);
      env[k!] = v.join(' ');
      continue;
    }
    for (const p of pairs) {
      const [k, v = ''] = p.split(/=(.*)/s);
      if (ins.op === 'ENV' || !(k! in env)) env[k!] = v.replace(/^"|"$/g, '');
    }
  }
  return env;
}

/** Exec-form CMD/ENTRYPOINT as an argv array. */
const execForm = (ins: Instruction | undefined): string[] => {
  if (!ins) return [];
  const v: unknown = JSON.parse(ins.args);
  if (!Array.isArray(v)) throw new Error(`line ${ins.line}: ${ins.op} must be exec form (JSON array)`);
  return v as string[];
};

/** `.dockerignore` patterns, negations resolved in order (enough for the top-level paths COPY uses). */
function ignoredByDockerignore(p: string): boolean {
  let ignored = false;
  for (const raw of read('.dockerignore').split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const neg = line.startsWith('!');
    const pat = (neg ? line.slice(1) : line).replace(/^\/+/, '').replace(/\/+$/, '');
    const re = new RegExp(
      '^' +
        pat
          .split('/')
          .map((seg) =>
            seg === '**'
              ? '(?:.*/)?'
              : seg
                  .replace(/[.+^${}()|[\]\\]/g, '\\$&')
                  .replace(/\*/g, '[^/]*')
                  .replace(/\?/g, '[^/]') + '/',
          )
          .join('')
          .replace(/\/$/, '') +
        '(?:/.*)?$',
    );
    if (re.test(p)) ignored = !neg;
  }
  return ignored;
}

const DOCKERFILES = ['docker/api.Dockerfile', 'docker/worker-cpu.Dockerfile', 'docker/worker-cuda.Dockerfile'] as const;
const parsed = Object.fromEntries(DOCKERFILES.map((f) => [f, parseDockerfile(read(f))])) as Record<(typeof DOCKERFILES)[number], Stage[]>;
const finalStage = (f: (typeof DOCKERFILES)[number]) => parsed[f].at(-1)!;

/** Variables an image may set beyond the app's env schema: Node's and the NVIDIA runtime's own, and WORKER. */
const STANDARD_ENV = /^(NODE_ENV|NODE_OPTIONS|PATH|TZ|MALLOC_[A-Z_]+|AWS_[A-Z_]+|NVIDIA_[A-Z_]+|ONNXRUNTIME_NODE_INSTALL(_CUDA)?|PRISMA_SCHEMA_ENGINE_BINARY)$/;

describe.each(DOCKERFILES)('%s', (file) => {
  const stages = parsed[file];
  const all = stages.flatMap((s) => s.body);
  const names = new Set(stages.map((s) => s.name).filter(Boolean));

  test('is multi-stage; every FROM names an explicit tag other than latest (or an earlier stage)', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    for (const s of stages) {
      if (names.has(s.from)) continue;
      expect(s.from).toMatch(/^[a-z0-9./_-]+:[A-Za-z0-9._-]+$/);
      expect(s.from).not.toMatch(/:latest$/);
    }
  });

  test('the final stage runs as a non-root USER, after its last RUN', () => {
    const body = finalStage(file).body;
    const userIdx = body.map((i) => i.op).lastIndexOf('USER');
    expect(userIdx).toBeGreaterThanOrEqual(0);
    expect(body[userIdx]!.args).not.toMatch(/^(root|0)(:|$)/);
    expect(body.slice(userIdx).some((i) => i.op === 'RUN')).toBe(false);
  });

  test('no ADD (COPY only; never ADD of a URL)', () => {
    expect(all.filter((i) => i.op === 'ADD')).toEqual([]);
    expect(all.filter((i) => i.op === 'COPY' && /https?:\/\//.test(i.args))).toEqual([]);
  });

  test('dependencies come from the lock file: npm ci, never npm install; dev dependencies pruned', () => {
    const runs = all.filter((i) => i.op === 'RUN').map((i) => i.args);
    expect(runs.some((r) => /\bnpm ci\b/.test(r))).toBe(true);
    expect(runs.filter((r) => /\bnpm (install|i)\b/.test(r))).toEqual([]);
    expect(runs.some((r) => /\bnpm prune --omit=dev\b/.test(r))).toBe(true);
    expect(runs.some((r) => /\bnpm run build\b/.test(r))).toBe(true);
  });

  test('apt: update and install in one RUN, -y --no-install-recommends, lists removed', () => {
    for (const r of all.filter((i) => i.op === 'RUN' && /\bapt(-get)? install\b/.test(i.args))) {
      expect(r.args).toMatch(/apt-get update/);
      expect(r.args).toMatch(/apt-get install -y --no-install-recommends /);
      expect(r.args).toMatch(/rm -rf \/var\/lib\/apt\/lists\/\*/);
    }
    expect(all.filter((i) => i.op === 'RUN' && /\bapt install\b|apt-get upgrade|dist-upgrade/.test(i.args))).toEqual([]);
  });

  test('every COPY source exists in the repository and is inside the build context (.dockerignore)', () => {
    for (const ins of all.filter((i) => i.op === 'COPY' && !/--from=/.test(i.args))) {
      const parts = ins.args.split(/\s+/).filter((p) => !p.startsWith('--'));
      const sources = parts.slice(0, -1);
      expect(sources.length).toBeGreaterThan(0);
      for (const src of sources) {
        expect([src, existsSync(path.join(root, src))]).toEqual([src, true]);
        expect([src, ignoredByDockerignore(src)]).toEqual([src, false]);
      }
    }
  });

  test('COPY --from names an earlier stage; the runtime stage never copies sources or dev files', () => {
    for (const ins of all.filter((i) => i.op === 'COPY' && /--from=/.test(i.args))) {
      const from = /--from=(\S+)/.exec(ins.args)![1]!;
      expect(names.has(from)).toBe(true);
    }
    const copies = finalStage(file)
      .body.filter((i) => i.op === 'COPY')
      .map((i) => i.args);
    expect(copies.every((c) => /--from=/.test(c))).toBe(true);
    expect(copies.filter((c) => /\/src\b|fixtures|\.git\b/.test(c))).toEqual([]);
  });

  test('every ENV of the final stage is declared by the worker/API env schema or is standard', () => {
    const schema = file === 'docker/api.Dockerfile' ? apiEnvSchema : workerEnvSchema;
    const declared = new Set(Object.keys(schema.shape));
    const env = envOf(finalStage(file));
    const unknown = Object.keys(env).filter((k) => !declared.has(k) && !STANDARD_ENV.test(k) && k !== 'WORKER');
    expect(unknown).toEqual([]);
  });
});

/** The file a `node <file>` argv runs, with ${WORKER} expanded. */
function nodeEntry(argv: string[], worker?: string): string {
  const cmd = argv[0] === 'sh' && argv[1] === '-c' ? argv[2]!.replace(/^exec\s+/, '').split(/\s+/) : argv;
  expect(cmd[0]).toBe('node');
  return cmd[1]!.replace(/\$\{?WORKER\}?/, worker ?? '');
}

/** Checks that the build produces `file`: `apps/<app>/dist/x.js` is the package's main or bin, and tsc compiles it from src/x.ts. */
function expectBuilt(file: string): void {
  const m = /^(apps|packages)\/([a-z-]+)\/dist\/(.+)\.js$/.exec(file);
  expect([file, m !== null]).toEqual([file, true]);
  const dir = `${m![1]}/${m![2]}`;
  const pkg = JSON.parse(read(`${dir}/package.json`)) as { main?: string; bin?: Record<string, string> };
  // a bin is a committed shim (bin/*.js) that loads its build: the file it loads counts as an entry
  const shimTargets = Object.values(pkg.bin ?? {}).flatMap((b) =>
    [...read(path.posix.join(dir, b)).matchAll(/new URL\('\.\.\/(dist\/[^']+)'/g)].map((x) => x[1]!),
  );
  const entries = [pkg.main, ...Object.values(pkg.bin ?? {}), ...shimTargets].filter(Boolean).map((e) => path.posix.join(dir, e!));
  expect(entries).toContain(file);
  const tsconfig = read(`${dir}/tsconfig.json`);
  expect(tsconfig).toMatch(/"rootDir":\s*"src"/);
  expect(tsconfig).toMatch(/"outDir":\s*"dist"/);
  expect(existsSync(path.join(root, dir, 'src', `${m![3]}.ts`))).toBe(true);
}

const WORKERS = ['augment', 'gsa', 'train', 'sample'] as const;

describe('image specifics', () => {
  test('api: node:20 slim, HEALTHCHECK on /healthz, EXPOSE 3000, CMD runs the built API', () => {
    const [build, run] = [parsed['docker/api.Dockerfile'][0]!, finalStage('docker/api.Dockerfile')];
    expect(build.from).toBe('node:20-bookworm-slim');
    expect(run.from).toBe('node:20-bookworm-slim');
    expect(envOf(build).ONNXRUNTIME_NODE_INSTALL).toBe('skip');
    const hc = run.body.find((i) => i.op === 'HEALTHCHECK');
    expect(hc?.args).toMatch(/\/healthz/);
    expect(run.body.find((i) => i.op === 'EXPOSE')?.args).toBe('3000');
    const cmd = execForm(run.body.find((i) => i.op === 'CMD'));
    expect(cmd).toEqual(['node', 'apps/api/dist/index.js']);
    expectBuilt(nodeEntry(cmd));
    const copied = run.body.filter((i) => i.op === 'COPY').map((i) => i.args.split(/\s+/).at(-2));
    expect(copied).toEqual(expect.arrayContaining(['/app/node_modules', '/app/packages', '/app/prisma', '/app/apps/api']));
    // only the API among the apps
    expect(copied.filter((c) => c?.startsWith('/app/apps'))).toEqual(['/app/apps/api']);
  });

  test.each(['docker/worker-cpu.Dockerfile', 'docker/worker-cuda.Dockerfile'] as const)(
    '%s: WORKER (default train) selects a built worker entry for each of the four stages',
    (file) => {
      const run = finalStage(file);
      const env = envOf(run);
      expect(env.WORKER).toBe('${WORKER}');
      const arg = run.body.find((i) => i.op === 'ARG' && i.args.startsWith('WORKER'));
      expect(arg?.args).toBe('WORKER=train');
      const cmd = execForm(run.body.find((i) => i.op === 'CMD'));
      for (const w of WORKERS) expectBuilt(nodeEntry(cmd, w));
      expect(run.body.some((i) => i.op === 'COPY' && /\/app\/apps\s/.test(i.args))).toBe(true);
      // the tiny bundle is created in CACHE_DIR on first use: a declared volume the user owns
      expect(env.CACHE_DIR).toBe('/var/cache/dynasyn');
      expect(run.body.find((i) => i.op === 'VOLUME')?.args).toContain('/var/cache/dynasyn');
      expect(read(file)).toMatch(/BACKBONE/);
    },
  );

  test('cpu workers skip the CUDA download; DEVICE=cpu', () => {
    expect(envOf(parsed['docker/worker-cpu.Dockerfile'][0]!).ONNXRUNTIME_NODE_INSTALL).toBe('skip');
    expect(envOf(finalStage('docker/worker-cpu.Dockerfile')).DEVICE).toBe('cpu');
  });

  test('cuda workers: CUDA 12 + cuDNN 9 runtime base, the CUDA provider installed (never skipped), DEVICE=cuda', () => {
    const stages = parsed['docker/worker-cuda.Dockerfile'];
    const run = stages.at(-1)!;
    expect(run.from).toMatch(/^nvidia\/cuda:12\.\d+\.\d+-cudnn(9)?-runtime-ubuntu\d+\.\d+$/);
    for (const s of stages) expect(envOf(s).ONNXRUNTIME_NODE_INSTALL).not.toBe('skip');
    expect(envOf(stages[0]!).ONNXRUNTIME_NODE_INSTALL_CUDA).toBe('v12');
    // the build fails if the provider library did not arrive
    expect(stages[0]!.body.some((i) => i.op === 'RUN' && /libonnxruntime_providers_cuda/.test(i.args))).toBe(true);
    expect(envOf(run).DEVICE).toBe('cuda');
    // Node 20's official binary in the runtime stage
    expect(run.body.some((i) => i.op === 'COPY' && /--from=build\s+\/usr\/local\/bin\/node\s/.test(i.args))).toBe(true);
    expect(stages[0]!.from).toMatch(/^node:20-/);
  });
});

// ---------------------------------------------------------------------------------------------- compose

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[] | string;
  environment?: Record<string, string | number | boolean>;
  healthcheck?: { test: string[] };
  depends_on?: Record<string, { condition: string }>;
  volumes?: string[];
  restart?: string;
  user?: string;
  privileged?: boolean;
  stop_grace_period?: string;
}
const compose = loadYaml(read('docker/compose.yaml')) as { services: Record<string, Service>; volumes: Record<string, unknown> };
const services = compose.services;
const envStrings = (s: Service) => Object.fromEntries(Object.entries(s.environment ?? {}).map(([k, v]) => [k, String(v)]));
const seconds = (d: string) => Number(/^(\d+)s$/.exec(d)?.[1] ?? NaN);

describe('docker/compose.yaml', () => {
  test('the local stack: stores, bucket job, migration job, API and the four workers', () => {
    expect(Object.keys(services).sort()).toEqual(
      ['api', 'create-bucket', 'migrate', 'minio', 'postgres', 'redis', ...WORKERS.map((w) => `worker-${w}`)].sort(),
    );
  });

  test('images are pinned (no latest); ours are built from docker/*.Dockerfile in the repository root', () => {
    for (const [name, s] of Object.entries(services)) {
      expect([name, s.image !== undefined]).toEqual([name, true]);
      expect([name, /:latest$|^[^:]+$/.test(s.image!)]).toEqual([name, false]);
      if (s.build) {
        expect(s.build.context).toBe('..');
        expect(DOCKERFILES as readonly string[]).toContain(s.build.dockerfile);
      }
    }
    expect(services.postgres!.image).toMatch(/^postgres:15/);
    expect(services.redis!.image).toMatch(/^redis:7/);
  });

  test('nothing runs as root or privileged (our images set a non-root USER)', () => {
    for (const s of Object.values(services)) {
      expect(s.privileged).toBeUndefined();
      expect(s.user === undefined || !/^(root|0)(:|$)/.test(s.user)).toBe(true);
    }
  });

  test('healthchecks: pg_isready, redis ping, minio ready, the API /healthz', () => {
    expect(services.postgres!.healthcheck!.test.join(' ')).toMatch(/pg_isready/);
    expect(services.redis!.healthcheck!.test.join(' ')).toMatch(/redis-cli.*ping/);
    expect(services.minio!.healthcheck!.test.join(' ')).toMatch(/mc ready|minio\/health/);
    expect(services.api!.healthcheck!.test.join(' ')).toMatch(/\/healthz/);
  });

  test('redis: noeviction and AOF, data on a volume; postgres data on a volume', () => {
    const cmd = (services.redis!.command as string[]).join(' ');
    expect(cmd).toMatch(/--maxmemory-policy noeviction/);
    expect(cmd).toMatch(/--appendonly yes/);
    expect(services.redis!.volumes).toEqual(expect.arrayContaining([expect.stringMatching(/^redis-data:\/data$/)]));
    expect(services.postgres!.volumes).toEqual(expect.arrayContaining([expect.stringMatching(/^postgres-data:\/var\/lib\/postgresql\/data$/)]));
    for (const v of Object.values(services).flatMap((s) => s.volumes ?? [])) {
      const named = v.split(':')[0]!;
      if (!named.startsWith('/') && !named.startsWith('.')) expect(Object.keys(compose.volumes)).toContain(named);
    }
  });

  test('depends_on: healthy stores, completed one-shot jobs; the API and workers start after migrate', () => {
    for (const [name, s] of Object.entries(services)) {
      for (const [dep, { condition }] of Object.entries(s.depends_on ?? {})) {
        expect(Object.keys(services)).toContain(dep);
        if (condition === 'service_healthy') expect([name, dep, services[dep]!.healthcheck !== undefined]).toEqual([name, dep, true]);
        else if (condition === 'service_completed_successfully') expect([dep, services[dep]!.restart]).toEqual([dep, 'no']);
        else throw new Error(`${name} -> ${dep}: condition ${condition}`);
      }
    }
    for (const name of ['api', ...WORKERS.map((w) => `worker-${w}`)]) {
      expect(services[name]!.depends_on).toMatchObject({
        postgres: { condition: 'service_healthy' },
        redis: { condition: 'service_healthy' },
        migrate: { condition: 'service_completed_successfully' },
        'create-bucket': { condition: 'service_completed_successfully' },
      });
    }
    expect(services.migrate!.depends_on).toMatchObject({ postgres: { condition: 'service_healthy' } });
  });

  test('migrate runs `dynasyn db migrate` from the built CLI', () => {
    const cmd = services.migrate!.command as string[];
    expect(cmd).toEqual(['node', 'apps/cli/dist/main.js', 'db', 'migrate']);
    expectBuilt(cmd[1]!);
    expect(services.migrate!.build!.dockerfile).toBe('docker/worker-cpu.Dockerfile');
    expect(envStrings(services.migrate!).DATABASE_URL).toMatch(/^postgres:\/\/.*@postgres:5432\//);
  });

  test('the bucket job creates the bucket STORAGE_URL names', () => {
    const bucket = /^s3:\/\/([^/]+)/.exec(envStrings(services.api!).STORAGE_URL!)![1]!;
    expect(JSON.stringify(services['create-bucket']!.command)).toContain(`mb --ignore-existing local/${bucket}`);
  });

  test('the API environment is declared by and valid for apps/api env.ts', () => {
    const env = envStrings(services.api!);
    const declared = new Set(Object.keys(apiEnvSchema.shape));
    expect(Object.keys(env).filter((k) => !declared.has(k) && !STANDARD_ENV.test(k))).toEqual([]);
    const parsedEnv = apiEnvSchema.parse(env);
    expect(parsedEnv.STORAGE_URL).toMatch(/^s3:\/\/dynasyn\//);
    expect(parsedEnv.S3_ENDPOINT).toBe('http://minio:9000');
    expect(parsedEnv.OPS_TOKEN).toBeDefined();
    expect(parsedEnv.REDIS_URL).toBe('redis://redis:6379');
  });

  test.each(WORKERS)('worker-%s: environment declared by and valid for the worker env schema; own cache volume; grace > shutdown', (w) => {
    const s = services[`worker-${w}`]!;
    const env = envStrings(s);
    expect(env.WORKER).toBe(w);
    const declared = new Set(Object.keys(workerEnvSchema.shape));
    expect(Object.keys(env).filter((k) => !declared.has(k) && !STANDARD_ENV.test(k) && k !== 'WORKER')).toEqual([]);
    const parsedEnv = workerEnvSchema.parse(env);
    expect(parsedEnv.STORAGE_URL).toBe(envStrings(services.api!).STORAGE_URL);
    expect(parsedEnv.QUEUE_PREFIX).toBe(apiEnvSchema.parse(envStrings(services.api!)).QUEUE_PREFIX);
    // the lease is checked against the lock (apps call checkStageLease), and the API's gauge uses the workers' lease
    expect(stageLeaseSeconds(checkStageLease(parsedEnv))).toBe(stageLeaseSeconds(checkStageLease(apiEnvSchema.parse(envStrings(services.api!)))));
    expect(s.volumes).toEqual([`cache-${w}:${parsedEnv.CACHE_DIR}`]);
    expect(seconds(s.stop_grace_period!)).toBeGreaterThan(parsedEnv.SHUTDOWN_GRACE_SECONDS);
    expect(s.build!.dockerfile).toMatch(/^docker\/worker-(cpu|cuda)\.Dockerfile$/);
  });

  test('the API stops within its grace period', () => {
    const env = apiEnvSchema.parse(envStrings(services.api!));
    expect(seconds(services.api!.stop_grace_period!)).toBeGreaterThan(env.SHUTDOWN_GRACE_SECONDS);
  });
});

describe('.dockerignore', () => {
  test('keeps build outputs, dependencies, git and run-time-irrelevant files out of the context', () => {
    for (const p of [
      'node_modules',
      'packages/db/node_modules',
      'apps/api/dist',
      '.git',
      'out',
      '.dynasyn',
      'packages/diffusion/fixtures',
      'apps/api/src/app.int.test.ts',
      'packages/db/tsconfig.tsbuildinfo',
    ]) {
      expect([p, ignoredByDockerignore(p)]).toEqual([p, true]);
    }
    for (const p of [
      'package.json',
      'package-lock.json',
      'prisma/migrations',
      'apps/api/src/index.ts',
      'packages/db/src/index.ts',
      'tsconfig.base.json',
      'turbo.json',
    ]) {
      expect([p, ignoredByDockerignore(p)]).toEqual([p, false]);
    }
  });
});

/**
 * The Kubernetes manifests (k8s/, kustomize base + cpu/gpu overlays) checked without a cluster: every file
 * parses (the `yaml` package, already in node_modules), carries the fields that matter, and every env
 * variable the manifests give a container is one its app's env schema declares, with the required ones
 * provided and the values accepted by the schema.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { z } from 'zod';
import { envSchema as apiEnvSchema } from '../../../api/src/env.js';
import { checkStageLease, stageLeaseSeconds, type StageTimesEnv } from '@dynasyn/config';
import { workerEnvSchema } from '@dynasyn/stages';
import { queueNames } from '@dynasyn/queue';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Obj = Record<string, any>;

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
const k8s = path.join(root, 'k8s');
const base = path.join(k8s, 'base');
const overlays = ['cpu', 'gpu'].map((o) => path.join(k8s, 'overlays', o));
const stages = ['augment', 'gsa', 'train', 'sample'] as const;
/** Stages scaled to zero in the base (augment keeps a CPU replica there; the gpu overlay scales it to zero too). */
const scaleToZeroStages = ['gsa', 'train', 'sample'] as const;

function yamlFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? yamlFiles(p) : /\.ya?ml$/.test(e.name) ? [p] : [];
  });
}

function load(file: string): Obj[] {
  const docs = parseAllDocuments(fs.readFileSync(file, 'utf8'));
  const list = Array.isArray(docs) ? docs : [docs];
  for (const d of list) if (d.errors.length) throw new Error(`${file}: ${d.errors.map((e) => e.message).join('; ')}`);
  return list.map((d) => d.toJS() as Obj).filter((o) => o != null);
}

const baseKustomization = load(path.join(base, 'kustomization.yaml'))[0]!;
const baseObjects = (baseKustomization.resources as string[]).flatMap((r) => load(path.join(base, r)));
const byKind = (kind: string) => baseObjects.filter((o) => o.kind === kind);
const find = (kind: string, name: string) => baseObjects.find((o) => o.kind === kind && o.metadata?.name === name);
const configMap = find('ConfigMap', 'dynasyn-config')!;
const secret = find('Secret', 'dynasyn-secrets')!;

/** The app whose env schema governs a workload's container. */
function schemaFor(name: string): z.ZodObject {
  if (name === 'api') return apiEnvSchema as unknown as z.ZodObject;
  if (name.startsWith('worker-')) return workerEnvSchema as unknown as z.ZodObject;
  throw new Error(`no schema for ${name}`);
}

/**
 * Variables read by the image (docker/'s entrypoint), not by the app: WORKER selects the stage in the
 * worker images, so it is checked against the Deployment instead of the env schema.
 */
const imageVariables = new Set(['WORKER']);

/** The environment a container gets: envFrom ConfigMap/Secret keys, then env entries (values resolved). */
function containerEnv(container: Obj): Map<string, string> {
  const env = new Map<string, string>();
  const data = (o: Obj) => ({ ...(o.data ?? {}), ...(o.stringData ?? {}) }) as Record<string, string>;
  for (const from of container.envFrom ?? []) {
    const src = from.configMapRef ? find('ConfigMap', from.configMapRef.name) : find('Secret', from.secretRef?.name);
    expect(src).toBeDefined();
    for (const [k, v] of Object.entries(data(src!))) env.set(k, String(v));
  }
  for (const e of container.env ?? []) {
    if (e.value !== undefined) env.set(e.name, String(e.value));
    else {
      const ref = e.valueFrom?.secretKeyRef ?? e.valueFrom?.configMapKeyRef;
      const src = e.valueFrom?.secretKeyRef ? find('Secret', ref.name) : find('ConfigMap', ref?.name);
      expect(src).toBeDefined();
      const value = data(src!)[ref.key];
      if (value === undefined) throw new Error(`${e.name}: key ${ref.key} missing from ${ref.name}`);
      env.set(e.name, String(value));
    }
  }
  return env;
}

const requiredKeys = (schema: z.ZodObject) =>
  Object.entries(schema.shape)
    .filter(([, s]) => !(s as z.ZodType).safeParse(undefined).success)
    .map(([k]) => k);

describe('k8s manifests', () => {
  it('every YAML file parses and every object has apiVersion, kind and metadata.name', () => {
    const files = yamlFiles(k8s);
    expect(files.length).toBeGreaterThan(20);
    for (const file of files) {
      for (const o of load(file)) {
        expect({ file, apiVersion: typeof o.apiVersion, kind: typeof o.kind }).toEqual({ file, apiVersion: 'string', kind: 'string' });
        if (o.kind !== 'Kustomization') expect({ file, name: typeof o.metadata?.name }).toEqual({ file, name: 'string' });
      }
    }
  });

  it('kustomizations reference files that exist; every base file is listed', () => {
    for (const dir of [base, ...overlays]) {
      const kz = load(path.join(dir, 'kustomization.yaml'))[0]!;
      expect(kz.kind).toBe('Kustomization');
      for (const r of kz.resources ?? []) expect(fs.existsSync(path.join(dir, r))).toBe(true);
      for (const p of kz.patches ?? []) expect(fs.existsSync(path.join(dir, p.path))).toBe(true);
    }
    const listed = new Set(baseKustomization.resources as string[]);
    for (const f of fs.readdirSync(base)) if (f !== 'kustomization.yaml') expect({ f, listed: listed.has(f) }).toEqual({ f, listed: true });
  });

  it('has the api, the four workers, a migration Job, a PDB, config and a secret template', () => {
    expect(
      byKind('Deployment')
        .map((d) => d.metadata.name)
        .sort(),
    ).toEqual(['api', ...stages.map((s) => `worker-${s}`)].sort());
    expect(find('Namespace', 'dynasyn')).toBeDefined();
    expect(baseKustomization.namespace).toBe('dynasyn');
    expect(configMap).toBeDefined();
    expect(Object.keys({ ...secret.data, ...secret.stringData }).sort()).toEqual([
      'AWS_ACCESS_KEY_ID',
      'AWS_SECRET_ACCESS_KEY',
      'DATABASE_URL',
      'METRICS_TOKEN',
      'OPS_TOKEN',
    ]);
    for (const v of Object.values(secret.stringData as Record<string, string>)) expect(v).toMatch(/CHANGE_ME/);
    const job = find('Job', 'db-migrate')!;
    expect(job.spec.template.spec.containers[0].command).toEqual(['node', 'apps/cli/dist/main.js', 'db', 'migrate']);
    // The image that ships the CLI (docker/: the API image copies only apps/api).
    expect(job.spec.template.spec.containers[0].image).toMatch(/^dynasyn\/worker-cpu/);
    const pdb = find('PodDisruptionBudget', 'api')!;
    expect(pdb.spec.selector.matchLabels).toEqual(find('Deployment', 'api')!.spec.selector.matchLabels);
    // Workers: drains take one at a time (each checkpoints in its grace period), never blocked by a floor.
    for (const s of stages) {
      const w = find('PodDisruptionBudget', `worker-${s}`)!;
      expect(w.spec.selector.matchLabels).toEqual(find('Deployment', `worker-${s}`)!.spec.selector.matchLabels);
      expect(w.spec.maxUnavailable).toBe(1);
      expect(w.spec.minAvailable).toBeUndefined();
    }
  });

  it('Deployments: selector matches template labels, resources set, non-root, grace outlasts the app shutdown', () => {
    for (const d of byKind('Deployment')) {
      const name = d.metadata.name as string;
      const labels = d.spec.template.metadata.labels as Record<string, string>;
      for (const [k, v] of Object.entries(d.spec.selector.matchLabels as Record<string, string>)) expect({ name, k, v: labels[k] }).toEqual({ name, k, v });
      const pod = d.spec.template.spec;
      expect(pod.securityContext.runAsNonRoot).toBe(true);
      for (const c of pod.containers) {
        expect(c.resources.requests.cpu).toBeDefined();
        expect(c.resources.requests.memory).toBeDefined();
        expect(c.resources.limits.memory).toBeDefined();
        expect(c.securityContext.allowPrivilegeEscalation).toBe(false);
        expect(c.securityContext.readOnlyRootFilesystem).toBe(true);
        const grace = Number(containerEnv(c).get('SHUTDOWN_GRACE_SECONDS') ?? 30);
        expect(pod.terminationGracePeriodSeconds ?? 30).toBeGreaterThan(grace);
      }
    }
    // A training checkpoint fits in the grace period.
    expect(find('Deployment', 'worker-train')!.spec.template.spec.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(600);
  });

  it('the api serves /readyz and /healthz probes on its PORT, exposed by the Service', () => {
    const d = find('Deployment', 'api')!;
    const c = d.spec.template.spec.containers[0];
    const port = Number(containerEnv(c).get('PORT') ?? 3000);
    const named = (p: string | number) => (typeof p === 'number' ? p : c.ports.find((x: Obj) => x.name === p)?.containerPort);
    expect(c.readinessProbe.httpGet.path).toBe('/readyz');
    expect(c.livenessProbe.httpGet.path).toBe('/healthz');
    expect(named(c.readinessProbe.httpGet.port)).toBe(port);
    expect(named(c.livenessProbe.httpGet.port)).toBe(port);
    const svc = find('Service', 'api')!;
    expect(svc.spec.selector).toEqual(d.spec.selector.matchLabels);
    expect(named(svc.spec.ports[0].targetPort)).toBe(port);
    // /metrics needs the METRICS_TOKEN: scraped by a ServiceMonitor with it, never by annotations (they cannot send one)
    expect(d.spec.template.metadata.annotations?.['prometheus.io/scrape']).toBeUndefined();
    const monitor = find('ServiceMonitor', 'api')!;
    expect(monitor.spec.selector.matchLabels).toEqual(svc.metadata.labels);
    const endpoint = monitor.spec.endpoints[0];
    expect(svc.spec.ports.map((p: Obj) => p.name)).toContain(endpoint.port);
    expect(endpoint.path).toBe('/metrics');
    expect(endpoint.authorization).toEqual({ type: 'Bearer', credentials: { name: secret.metadata.name, key: 'METRICS_TOKEN' } });
    expect((secret.stringData as Record<string, string>).METRICS_TOKEN?.length).toBeGreaterThanOrEqual(16);
    // the api reads the secret (envFrom), so the token it checks is the one Prometheus sends
    expect(c.envFrom.map((e: Obj) => e.secretRef?.name)).toContain(secret.metadata.name);
  });

  it('every env variable is declared by the app schema, the required ones are provided and the values parse', () => {
    const workloads = [...byKind('Deployment'), ...byKind('Job')];
    const leases = new Map<string, number>();
    for (const w of workloads) {
      const name = w.metadata.name as string;
      for (const c of w.spec.template.spec.containers) {
        const env = containerEnv(c);
        if (name === 'db-migrate') {
          // `dynasyn db migrate` reads DATABASE_URL only.
          expect([...env.keys()]).toEqual(['DATABASE_URL']);
          continue;
        }
        const schema = schemaFor(name);
        const declared = new Set(Object.keys(schema.shape));
        const undeclared = [...env.keys()].filter((k) => !declared.has(k) && !imageVariables.has(k));
        expect({ name, undeclared }).toEqual({ name, undeclared: [] });
        const missing = requiredKeys(schema).filter((k) => !env.has(k));
        expect({ name, missing }).toEqual({ name, missing: [] });
        const parsed = schema.safeParse(Object.fromEntries([...env].filter(([k]) => declared.has(k))));
        expect({ name, issues: parsed.success ? [] : parsed.error.issues }).toEqual({ name, issues: [] });
        // the lease is checked against the lock (apps call checkStageLease), and the API's is the workers'
        if (parsed.success) leases.set(name, stageLeaseSeconds(checkStageLease(parsed.data as StageTimesEnv)));
        if (name.startsWith('worker-')) expect(env.get('WORKER')).toBe(name.slice('worker-'.length));
      }
    }
    expect(new Set(leases.values())).toEqual(new Set([600]));
    expect([...leases.keys()]).toContain('api');
    expect(requiredKeys(workerEnvSchema as unknown as z.ZodObject).sort()).toEqual(['DATABASE_URL', 'STORAGE_URL']);
  });

  it('KEDA ScaledObjects target the worker Deployments and query their queue depth; GPU stages scale to zero', () => {
    const objects = byKind('ScaledObject');
    expect(objects).toHaveLength(stages.length);
    for (const s of stages) {
      expect(queueNames).toContain(s);
      const so = objects.find((o) => o.spec.scaleTargetRef.name === `worker-${s}`)!;
      expect(so).toBeDefined();
      expect(find(so.spec.scaleTargetRef.kind ?? 'Deployment', `worker-${s}`)).toBeDefined();
      const [trigger] = so.spec.triggers;
      expect(trigger.type).toBe('prometheus');
      expect(trigger.metadata.query).toContain(`dynasyn_queue_depth{queue="${s}"}`);
      expect(Number(trigger.metadata.threshold)).toBeGreaterThan(0);
      expect(so.spec.maxReplicaCount).toBeGreaterThanOrEqual(so.spec.minReplicaCount);
    }
    for (const s of scaleToZeroStages) expect(objects.find((o) => o.metadata.name === `worker-${s}`)!.spec.minReplicaCount).toBe(0);
  });

  it('the metric the ScaledObjects query is the one packages/queue exports', () => {
    const health = fs.readFileSync(path.join(root, 'packages/queue/src/health.ts'), 'utf8');
    expect(health).toMatch(/metricPrefix = 'dynasyn_queue'/);
    expect(health).toMatch(/gauge\(\s*'depth'/);
  });

  it('the gpu overlay puts every model stage on the CUDA image with a GPU, the pool selector and tolerations', () => {
    const gpu = overlays[1]!;
    const kz = load(path.join(gpu, 'kustomization.yaml'))[0]!;
    const all = (kz.patches as { path: string }[]).flatMap((p) => load(path.join(gpu, p.path)));
    const patches = all.filter((p) => p.kind === 'Deployment');
    // each stage runs the backbone (augment: drafts and inpainting), so all four are GPU workers
    expect(patches.map((p) => p.metadata.name).sort()).toEqual(stages.map((s) => `worker-${s}`).sort());
    // and all four scale to zero there, so no GPU node is held by an idle stage
    const scaled = all.filter((p) => p.kind === 'ScaledObject');
    expect(scaled.map((p) => p.metadata.name)).toEqual(['worker-augment']);
    expect(find('ScaledObject', 'worker-augment')).toBeDefined();
    expect(scaled[0]!.spec.minReplicaCount).toBe(0);
    const [trigger] = scaled[0]!.spec.triggers; // a merge patch replaces the list whole: it must be complete
    expect(trigger).toMatchObject({
      type: 'prometheus',
      metadata: { query: expect.stringContaining('dynasyn_queue_depth{queue="augment"}'), serverAddress: expect.any(String) },
    });
    for (const p of patches) {
      expect(find(p.kind, p.metadata.name)).toBeDefined();
      const pod = p.spec.template.spec;
      expect(Object.keys(pod.nodeSelector ?? {}).length).toBeGreaterThan(0);
      expect(pod.tolerations).toEqual(expect.arrayContaining([expect.objectContaining({ key: 'nvidia.com/gpu', effect: 'NoSchedule' })]));
      const baseContainers = find(p.kind, p.metadata.name)!.spec.template.spec.containers.map((c: Obj) => c.name);
      for (const c of pod.containers) {
        expect(baseContainers).toContain(c.name); // strategic merge by container name
        expect(c.image).toMatch(/^dynasyn\/worker-cuda/);
        expect(c.resources.limits['nvidia.com/gpu']).toBe(1);
        expect(c.env).toEqual(expect.arrayContaining([{ name: 'DEVICE', value: 'cuda' }]));
        const bad = (c.env as Obj[]).map((e) => e.name).filter((k) => !(k in workerEnvSchema.shape));
        expect(bad).toEqual([]);
        expect(workerEnvSchema.shape.DEVICE.safeParse('cuda').success).toBe(true);
      }
    }
    expect((kz.images as Obj[]).map((i) => i.name)).toContain('dynasyn/worker-cuda');
  });
});

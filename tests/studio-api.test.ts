/**
 * The studio's HTTP API against a running server (`startStudio`, port 0, a temporary work
 * folder) on the tiny SD-Turbo fixture: health and model info, previews, bad input, a film
 * render in the CLI's work-folder format (refined by the CLI afterwards), the job queue, cancel,
 * session isolation, the event stream, refused path traversal, and loading another model
 * (tiny SDXL-Turbo: from a folder, confined to --models-dir, downloaded from a fake Hub).
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, realpathSync, symlinkSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve, sep } from 'node:path';
import sharp from 'sharp';
import { startStudio, type Studio } from '../src/studio/server.ts';
import { JobQueue } from '../src/studio/jobs.ts';
import { probeVideo } from '../src/io/video.ts';
import { loadTransition } from '../src/io/store.ts';
import { parseFilmSpec } from '../src/film/spec.ts';
import { readFilmRecord } from '../src/film/film-record.ts';
import { modelDir } from './helpers/golden.ts';
import { runCliProcess } from './helpers/cli.ts';
import { FakeHub } from './helpers/fake-hub.ts';
import { StudioClient } from './helpers/studio-client.ts';

interface Job {
  id: string;
  kind: string;
  state: 'queued' | 'running' | 'done' | 'failed' | 'cancelled';
  position: number;
  progress: { done: number; total: number; label: string; etaSeconds?: number };
  result?: any;
  error?: { code: string; message: string };
  warnings: string[];
  startedAt?: string;
  finishedAt?: string;
}

/** The tests' studio client, optionally starting with a given cookie (`name=value`). */
class Client extends StudioClient {
  constructor(base: URL, cookie?: string) {
    super(base);
    if (cookie !== undefined) {
      const at = cookie.indexOf('=');
      this.setCookie(cookie.slice(0, at), cookie.slice(at + 1));
    }
  }

  /** Polls a job until it ends (30 s at most). */
  override waitFor(jobId: string, timeoutMs = 30_000): Promise<Job> {
    return super.waitFor(jobId, timeoutMs);
  }

  /** Waits until no job runs or waits (all sessions). */
  async idle(): Promise<void> {
    for (;;) {
      const health = (await this.get('/api/health')).json as { queue: { running: number; queued: number } };
      if (health.queue.running === 0 && health.queue.queued === 0) return;
      await new Promise((wait) => setTimeout(wait, 20));
    }
  }
}

/** Width and height of a PNG from its IHDR chunk, after checking the signature. */
function pngSize(bytes: Buffer): { width: number; height: number } {
  assert.deepEqual([...bytes.subarray(0, 8)], [137, 80, 78, 71, 13, 10, 26, 10], 'a PNG signature');
  return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
}

const MODEL = modelDir('tiny-sd-turbo');
const work = mkdtempSync(join(tmpdir(), 'latentblend-studio-'));
const workDir = join(work, 'studio');
let studio: Studio;
let alice: Client;
let bob: Client;
let base: URL;

function filmSpec(keyframes: string[], extra: Record<string, unknown> = {}) {
  return {
    fps: 10,
    transitionDuration: 1,
    branchesPerTransition: 4,
    ...extra,
    keyframes: keyframes.map((prompt, index) => ({ prompt, seed: index + 1, ...(index === 0 ? { duration: 2 } : {}) })),
  };
}

/** A previews job that keeps the queue busy for a while (8 images of many steps). */
const LONG_PREVIEWS = { prompt: 'a long job', count: 8, steps: 40 };

before(async () => {
  studio = await startStudio({ modelDir: MODEL, workDir, port: 0, staticDir: join(work, 'static') });
  base = new URL(studio.url);
  alice = new Client(base);
  bob = new Client(base);
});

after(async () => {
  await studio?.close();
});

describe('studio API', () => {
  test('health and model info; the session cookie is HttpOnly and SameSite=Strict', async () => {
    const health = await alice.get('/api/health');
    assert.equal(health.status, 200);
    assert.equal(health.json.ok, true);
    const cookie = health.headers['set-cookie']?.[0] ?? '';
    assert.match(cookie, /^lb_session=[0-9a-f]{32}\.[\w-]+;/);
    assert.match(cookie, /HttpOnly/);
    assert.match(cookie, /SameSite=Strict/);
    assert.match(studio.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);

    const model = await alice.get('/api/model');
    assert.equal(model.status, 200);
    assert.equal(model.json.family, 'sd');
    assert.equal(model.json.preset, 'turbo');
    assert.equal(model.json.source, resolve(MODEL));
    assert.deepEqual([model.json.defaults.width, model.json.defaults.height, model.json.defaults.steps], [64, 64, 4]);
    assert.equal(model.json.defaults.maxBranches, 10);
    assert.deepEqual(model.json.defaults.parentalCrossfeed, { power: 1, range: 1, decay: 1 });
    assert.equal(model.json.device, 'cpu');
    assert.equal(typeof model.json.metric, 'string');
    // A second request keeps the session: no new cookie.
    assert.equal((await alice.get('/api/jobs')).headers['set-cookie'], undefined);
  });

  test('previews: a job whose images are 64x64 PNGs fetched from /api/files', async () => {
    const reply = await alice.post('/api/previews', { prompt: 'a cat', seeds: [1, 2], steps: 2 });
    assert.equal(reply.status, 202, reply.text);
    assert.equal(reply.json.kind, 'previews');
    assert.ok(['queued', 'running'].includes(reply.json.state));
    const job = await alice.waitFor(reply.json.id);
    assert.equal(job.state, 'done', JSON.stringify(job.error));
    assert.deepEqual(job.result.images.map((image: { seed: number }) => image.seed), [1, 2]);
    assert.equal(job.result.prompt, 'a cat');
    const pngs: Buffer[] = [];
    for (const image of job.result.images as { url: string }[]) {
      assert.match(image.url, /^\/api\/files\/[a-z0-9-]+\.png$/);
      const file = await alice.get(image.url);
      assert.equal(file.status, 200);
      assert.equal(file.headers['content-type'], 'image/png');
      assert.deepEqual(pngSize(file.body), { width: 64, height: 64 });
      const meta = await sharp(file.body).metadata();
      assert.deepEqual([meta.format, meta.width, meta.height], ['png', 64, 64]);
      pngs.push(file.body);
    }
    assert.notDeepEqual(pngs[0], pngs[1], 'different seeds, different images');

    const random = await alice.post('/api/previews', { prompt: 'a dog', count: 3, steps: 1 });
    assert.equal(random.status, 202, random.text);
    const randomJob = await alice.waitFor(random.json.id);
    assert.equal(randomJob.result.images.length, 3);
    for (const image of randomJob.result.images as { seed: number }[]) assert.ok(Number.isInteger(image.seed));
  });

  test('bad input: 400/413/415 with JSON errors that name the key', async () => {
    const cases: [unknown, RegExp][] = [
      [{}, /prompt/],
      [{ prompt: '' }, /prompt: expected a prompt string/],
      [{ prompt: 'a cat', count: 99 }, /count: expected an integer from 1 to 8, got 99/],
      [{ prompt: 'a cat', seeds: [1.5] }, /seeds\[0\]: expected an integer seed/],
      [{ prompt: 'a cat', seeds: 'abc' }, /seeds: expected a list/],
      [{ prompt: 'a cat', colour: 'red' }, /unknown key "colour"/],
      [{ prompt: 'a cat', seeds: [1, 2], count: 3 }, /count: give seeds or count/],
      [[1, 2], /previews request/],
    ];
    for (const [body, message] of cases) {
      const reply = await alice.post('/api/previews', body);
      assert.equal(reply.status, 400, `${JSON.stringify(body)}: ${reply.text}`);
      assert.equal(typeof reply.json.error.code, 'string');
      assert.match(reply.json.error.message, message);
    }
    const badSpec = await alice.post('/api/renders', { spec: { keyframes: [{ prompt: 'a', seed: 1 }, { prompt: 'b', seed: 'x' }] } });
    assert.equal(badSpec.status, 400);
    assert.match(badSpec.json.error.message, /keyframes\[1\]\.seed: expected an integer seed/);
    const typo = await alice.post('/api/renders', { spec: { ...filmSpec(['a', 'b']), guidance_scale: 2 } });
    assert.equal(typo.status, 400);
    assert.match(typo.json.error.message, /guidance_scale: unknown key, did you mean "guidanceScale"\?/);
    const index = await alice.post('/api/renders', { spec: filmSpec(['a', 'b', 'c']), transitionIndex: 2 });
    assert.equal(index.status, 400);
    assert.match(index.json.error.message, /transitionIndex: expected an integer from 0 to 1/);
    const format = await alice.post('/api/renders', { spec: filmSpec(['a', 'b']), format: 'avi' });
    assert.equal(format.status, 400);
    assert.match(format.json.error.message, /format: expected one of mp4, webm, gif/);
    const preset = await alice.post('/api/renders', { spec: filmSpec(['a', 'b'], { preset: 'standard' }) });
    assert.equal(preset.status, 400);
    assert.match(preset.json.error.message, /preset: this studio's model runs with the turbo preset/);

    const tooLarge = await alice.request('POST', '/api/previews', { body: JSON.stringify({ prompt: 'x'.repeat(1024 * 1024 + 10) }), headers: { 'content-type': 'application/json' } });
    assert.equal(tooLarge.status, 413);
    assert.equal(tooLarge.json.error.code, 'too_large');
    const badJson = await alice.request('POST', '/api/previews', { body: '{"prompt": "a cat",', headers: { 'content-type': 'application/json' } });
    assert.equal(badJson.status, 400);
    assert.equal(badJson.json.error.code, 'bad_json');
    const notJson = await alice.request('POST', '/api/previews', { body: 'prompt=a+cat', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    assert.equal(notJson.status, 415);

    assert.equal((await alice.get('/api/nothing-here')).status, 404);
    const wrongMethod = await alice.request('DELETE', '/api/jobs');
    assert.equal(wrongMethod.status, 405);
    assert.equal((await alice.get('/api/jobs/000000000000000000000000')).status, 404);
    assert.deepEqual((await alice.get('/api/jobs')).json.jobs.filter((job: Job) => job.state === 'failed'), [], 'no bad request became a job');
  });

  test('spec endpoints: example, parse (YAML and JSON, errors with line numbers), to YAML', async () => {
    const example = await alice.get('/api/spec/example');
    assert.equal(example.status, 200);
    const parsed = await alice.post('/api/spec/parse', { text: example.json.yaml, format: 'yaml' });
    assert.equal(parsed.status, 200, parsed.text);
    assert.equal(parsed.json.spec.keyframes.length, 3);
    const yaml = await alice.post('/api/spec/yaml', { spec: parsed.json.spec });
    assert.equal(yaml.status, 200, yaml.text);
    assert.deepEqual(parseFilmSpec(yaml.json.yaml, { path: 'x.yaml' }), parsed.json.spec);
    const badYaml = await alice.post('/api/spec/parse', { text: 'fps: 10\nkeyframes: [\n', format: 'yaml' });
    assert.equal(badYaml.status, 400);
    assert.match(badYaml.json.error.message, /spec\.yaml:\d+:\d+: YAML syntax error/);
    const badJson = await alice.post('/api/spec/parse', { text: '{"keyframes": [],}', format: 'json' });
    assert.equal(badJson.status, 400);
    assert.match(badJson.json.error.message, /trailing comma/);
    const badFormat = await alice.post('/api/spec/parse', { text: 'x', format: 'toml' });
    assert.equal(badFormat.status, 400);
    assert.match(badFormat.json.error.message, /format: expected yaml or json/);
  });

  let film: { jobId: string; result: any };

  test('render: a 3-keyframe film with live frames on the event stream, in the CLI work-folder format', async () => {
    await alice.idle();
    const reply = await alice.post('/api/renders', { spec: { model: 'ignored/by-the-studio', ...filmSpec(['a cat', 'a dog', 'a bird']) } });
    assert.equal(reply.status, 202, reply.text);
    assert.equal(reply.json.kind, 'render');
    const stream = await alice.events(reply.json.id);
    assert.equal(stream.status, 200);
    const jobs = stream.events.filter((event) => event.event === 'job').map((event) => event.data as Job);
    assert.ok(jobs.length >= 2, 'several job events');
    assert.equal(jobs[jobs.length - 1]!.state, 'done', JSON.stringify(jobs[jobs.length - 1]!.error));
    assert.ok(jobs.some((job) => job.state === 'running' && job.progress.done > 0 && job.progress.done < job.progress.total), 'progress while running');
    const frames = stream.events.filter((event) => event.event === 'frame').map((event) => event.data);
    // 4 frames in the first transition, 3 more in the second (keyframe 2 is shared, sent once).
    assert.equal(frames.length, 7);
    assert.deepEqual(frames.map((frame) => frame.transition).sort(), [0, 0, 0, 0, 1, 1, 1]);
    for (const frame of frames) {
      assert.ok(frame.fract >= 0 && frame.fract <= 1);
      const png = await alice.get(frame.url);
      assert.equal(png.status, 200);
      assert.deepEqual(pngSize(png.body), { width: 64, height: 64 });
    }

    const job = jobs[jobs.length - 1]!;
    const result = job.result;
    assert.equal(result.frames, 7);
    assert.equal(result.filmFrames, 29, '2 s + 1 s at 10 fps, the shared keyframe shown once');
    assert.match(result.filmUrl, /^\/api\/files\/[0-9a-f]{24}\.mp4$/);
    const video = await alice.get(result.filmUrl);
    assert.equal(video.status, 200);
    assert.equal(video.headers['content-type'], 'video/mp4');
    assert.equal(video.headers['accept-ranges'], 'bytes');
    const videoPath = join(work, 'downloaded.mp4');
    writeFileSync(videoPath, video.body);
    const info = await probeVideo(videoPath);
    assert.deepEqual([info.frames, info.width, info.height], [29, 64, 64]);
    const range = await alice.get(result.filmUrl, { range: 'bytes=0-9' });
    assert.equal(range.status, 206);
    assert.equal(range.body.length, 10);
    assert.deepEqual(range.body, video.body.subarray(0, 10));
    const download = await alice.get(`${result.filmUrl}?download=1`);
    // Named after the first prompt, not the film's id.
    assert.equal(download.headers['content-disposition'], `attachment; filename="a-cat.mp4"; filename*=UTF-8''a-cat.mp4`);
    for (const url of [result.contactSheetUrl, result.smoothnessUrl]) {
      const side = await alice.get(url);
      assert.equal(side.status, 200, url);
      pngSize(side.body);
    }

    // The work folder: inside the studio's, film.json + transitions/, a spec the CLI can run.
    const folder = result.workDir as string;
    assert.ok(folder.startsWith(resolve(workDir) + sep), folder);
    const record = readFilmRecord(folder);
    assert.equal(record.kind, 'movie');
    assert.equal(record.transitions.length, 2);
    assert.equal(resolve(folder, record.out), join(folder, 'film.mp4'));
    const spec = parseFilmSpec(readFileSync(join(folder, 'spec.yaml'), 'utf8'), { path: 'spec.yaml' });
    assert.equal(spec.model, resolve(MODEL), "the studio's model, not the spec's");
    const first = await loadTransition(join(folder, record.transitions[0]!.dir));
    assert.equal(first.transition.frames.length, 4);
    assert.equal(first.model.source, resolve(MODEL));
    film = { jobId: job.id, result };
  });

  test('a studio film is refined by `latentblend refine` and reused by the next render', async () => {
    const folder = film.result.workDir as string;
    const record = readFilmRecord(folder);
    const transitionDir = join(folder, record.transitions[0]!.dir);
    const run = runCliProcess(['refine', transitionDir, '--branches', '2', '--json']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal((await loadTransition(transitionDir)).transition.frames.length, 6);
    const refinedVideo = await probeVideo(join(folder, 'film.mp4'));
    assert.equal(refinedVideo.frames, 29, 'the film was rendered again by the CLI');
    const fetched = await alice.get(film.result.filmUrl);
    assert.equal(fetched.status, 200);
    // `latentblend movie` on the studio's spec and work folder resumes: nothing is recomputed.
    const movie = runCliProcess(['movie', join(folder, 'spec.yaml'), '--out', join(folder, 'film.mp4'), '--work-dir', folder, '--force', '--json']);
    assert.equal(movie.code, 0, movie.stderr);
    const summary = JSON.parse(movie.stdout) as { transitionsReused: number; unetCalls: number };
    assert.deepEqual([summary.transitionsReused, summary.unetCalls], [2, 0]);

    // Rendering the same spec again reuses both transitions (the refined one with its 6 frames).
    const again = await alice.post('/api/renders', { spec: filmSpec(['a cat', 'a dog', 'a bird']), format: 'webm' });
    assert.equal(again.status, 202, again.text);
    const job = await alice.waitFor(again.json.id);
    assert.equal(job.state, 'done', JSON.stringify(job.error));
    assert.equal(job.result.transitionsReused, 2);
    assert.equal(job.result.unetCalls, 0);
    assert.equal(job.result.frames, 6 + 3);
    assert.match(job.result.filmUrl, /\.webm$/);
    assert.equal((await alice.get(job.result.filmUrl)).headers['content-type'], 'video/webm');

    // One transition only.
    const only = await alice.post('/api/renders', { spec: filmSpec(['a cat', 'a dog', 'a bird']), transitionIndex: 1, format: 'gif' });
    assert.equal(only.status, 202, only.text);
    const onlyJob = await alice.waitFor(only.json.id);
    assert.equal(onlyJob.state, 'done', JSON.stringify(onlyJob.error));
    assert.equal(onlyJob.result.transitions, 1);
    assert.equal(onlyJob.result.transitionsReused, 1);
    assert.equal(onlyJob.result.filmFrames, 10);

    const films = await alice.get('/api/films');
    assert.equal(films.status, 200);
    const list = films.json.films as { id: string; filmUrl: string; createdAt: string; spec: any }[];
    assert.equal(list.length, 3);
    assert.deepEqual(list.map((entry) => entry.filmUrl), [onlyJob.result.filmUrl, job.result.filmUrl, film.result.filmUrl], 'newest first');
    assert.equal(list[2]!.spec.model, 'ignored/by-the-studio', 'the spec as sent');
    assert.ok(!Number.isNaN(Date.parse(list[0]!.createdAt)));
  });

  test('queue: one job at a time, the others see their place and run in order', async () => {
    await alice.idle();
    const first = await alice.post('/api/previews', LONG_PREVIEWS);
    const second = await alice.post('/api/previews', { prompt: 'second', count: 1, steps: 1 });
    const third = await bob.post('/api/previews', { prompt: 'third', count: 1, steps: 1 });
    assert.deepEqual(
      [first.json.state, second.json.state, third.json.state, first.json.position, second.json.position, third.json.position],
      ['running', 'queued', 'queued', 0, 1, 2],
    );
    const thirdNow = await bob.get(`/api/jobs/${third.json.id}`);
    assert.deepEqual([thirdNow.json.state, thirdNow.json.position], ['queued', 2]);
    const jobs = [await alice.waitFor(first.json.id), await alice.waitFor(second.json.id), await bob.waitFor(third.json.id)];
    assert.deepEqual(jobs.map((job) => job.state), ['done', 'done', 'done']);
    for (let index = 1; index < jobs.length; index++) {
      assert.ok(Date.parse(jobs[index]!.startedAt!) >= Date.parse(jobs[index - 1]!.finishedAt!), 'started after the previous one finished');
    }
    assert.equal(jobs[0]!.result.images.length, 8);
  });

  test('cancel: a queued job leaves the queue, a running one stops within a step, the next job still runs', async () => {
    await alice.idle();
    const running = await alice.post('/api/previews', LONG_PREVIEWS);
    const queued = await alice.post('/api/previews', LONG_PREVIEWS);
    const next = await alice.post('/api/previews', { prompt: 'after the cancels', count: 1, steps: 1 });
    assert.equal(queued.json.position, 1);
    assert.equal(next.json.position, 2);

    const cancelQueued = await alice.request('POST', `/api/jobs/${queued.json.id}/cancel`);
    assert.equal(cancelQueued.status, 200, cancelQueued.text);
    assert.equal(cancelQueued.json.state, 'cancelled');
    assert.equal((await alice.get(`/api/jobs/${next.json.id}`)).json.position, 1, 'the next job moved up');

    const started = Date.now();
    const cancelRunning = await alice.request('POST', `/api/jobs/${running.json.id}/cancel`);
    assert.equal(cancelRunning.status, 200);
    const stopped = await alice.waitFor(running.json.id);
    assert.equal(stopped.state, 'cancelled');
    assert.ok(Date.now() - started < 5000, `stopped in ${Date.now() - started} ms`);
    assert.ok((stopped.result?.images?.length ?? 0) < 8);
    const after = await alice.waitFor(next.json.id);
    assert.equal(after.state, 'done');
    assert.equal((await alice.request('POST', `/api/jobs/${next.json.id}/cancel`)).status, 409, 'a finished job cannot be cancelled');
  });

  test('sessions are isolated: another cookie jar cannot see, cancel, stream or fetch the first one’s work', async () => {
    await alice.idle();
    const job = await alice.post('/api/previews', LONG_PREVIEWS);
    const eve = new Client(base);
    assert.equal((await eve.get(`/api/jobs/${job.json.id}`)).status, 404);
    assert.equal((await eve.request('POST', `/api/jobs/${job.json.id}/cancel`)).status, 404);
    assert.equal((await eve.events(job.json.id)).status, 404);
    assert.deepEqual((await eve.get('/api/jobs')).json.jobs, []);
    assert.deepEqual((await eve.get('/api/films')).json.films, []);
    for (const url of [film.result.filmUrl, film.result.contactSheetUrl, `/api/files/${film.jobId}-frame-0.png`]) {
      assert.equal((await eve.get(url)).status, 404, url);
    }
    // A forged cookie (alice's id, another signature) is a new session, not alice's.
    const aliceId = alice.cookie!.split('=')[1]!.split('.')[0]!;
    const forged = new Client(base, `lb_session=${aliceId}.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA`);
    assert.equal((await forged.get(`/api/jobs/${job.json.id}`)).status, 404);
    assert.notEqual(forged.cookie?.split('.')[0], `lb_session=${aliceId}`);
    // The job ran on untouched.
    assert.equal((await alice.get(`/api/jobs/${job.json.id}`)).json.state, 'running');
    await alice.request('POST', `/api/jobs/${job.json.id}/cancel`);
    assert.equal((await alice.waitFor(job.json.id)).state, 'cancelled');
  });

  test('path traversal, symlinks, foreign hosts and origins are refused', async () => {
    const secret = readFileSync(join(workDir, 'studio-secret'), 'utf8').trim();
    const attempts = [
      '/api/files/../../etc/passwd',
      '/api/files/..%2f..%2fstudio-secret',
      '/api/files/%2e%2e%2f%2e%2e%2fstudio-secret',
      '/api/files/%2e%2e/%2e%2e/studio-secret',
      '/api/files/%2fetc%2fpasswd',
      '/api/files//etc/passwd',
      '/api/files/..%5c..%5cstudio-secret',
      '/api/files/studio-secret',
      '/api/files/%00.png',
      '/api/files/FILM.MP4',
      '/../../etc/passwd',
      '/%2e%2e/%2e%2e/etc/passwd',
      '/..%2f..%2fetc%2fpasswd',
    ];
    for (const path of attempts) {
      const reply = await alice.get(path);
      assert.ok([400, 404].includes(reply.status), `${path}: ${reply.status}`);
      assert.doesNotMatch(reply.text, /root:/);
      assert.ok(!reply.text.includes(secret), path);
    }
    // A symlink planted in the session's folder is not followed.
    const sessionId = alice.cookie!.split('=')[1]!.split('.')[0]!;
    const files = join(workDir, 'sessions', sessionId, 'files');
    mkdirSync(files, { recursive: true });
    symlinkSync(join(workDir, 'studio-secret'), join(files, 'planted.png'));
    symlinkSync('/etc/passwd', join(files, 'passwd.png'));
    assert.equal((await alice.get('/api/files/planted.png')).status, 404);
    assert.equal((await alice.get('/api/files/passwd.png')).status, 404);
    // DNS rebinding and cross-site requests.
    assert.equal((await alice.get('/api/health', { host: 'evil.example:80' })).status, 403);
    const crossSite = await alice.request('POST', '/api/previews', { json: { prompt: 'x' }, headers: { origin: 'http://evil.example' } });
    assert.equal(crossSite.status, 403);
    // Only the session's own folders were written: nothing outside the work folder.
    assert.deepEqual(readdirSync(workDir).sort(), ['sessions', 'studio-secret']);
  });

  test('the front end is served from the static folder (staticDir), nothing outside it', async () => {
    const folder = join(work, 'static');
    assert.equal((await alice.get('/')).status, 404, 'no index.html yet');
    mkdirSync(folder, { recursive: true });
    writeFileSync(join(folder, 'index.html'), '<!doctype html><title>studio</title>');
    writeFileSync(join(folder, 'app.js'), 'export const x = 1;\n');
    symlinkSync(join(workDir, 'studio-secret'), join(folder, 'secret.js'));
    const page = await alice.get('/');
    assert.equal(page.status, 200);
    assert.equal(page.text, '<!doctype html><title>studio</title>');
    assert.match(String(page.headers['content-type']), /text\/html/);
    assert.match(String(page.headers['content-security-policy']), /default-src 'self'/);
    const script = await alice.get('/app.js');
    assert.equal(script.status, 200);
    assert.match(String(script.headers['content-type']), /javascript/);
    assert.equal((await alice.get('/secret.js')).status, 404, 'a symlink is not followed');
    assert.equal((await alice.get('/missing.css')).status, 404);
    assert.equal((await alice.request('POST', '/index.html', { json: {} })).status, 405);
    assert.equal((await alice.get('/%2e%2e/studio/studio-secret')).status, 400);
  });
});

/** Every file under a folder (relative paths), for copying a fixture into a fake Hub repo. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(dir, join(entry.parentPath, entry.name)));
}

describe('studio API: loading another model', () => {
  const SDXL = modelDir('tiny-sdxl-turbo');

  test('plainly bad sources are a 400; a missing folder, a file or a folder that is no model fail the job, naming it', async () => {
    await alice.idle();
    const cases: [unknown, RegExp][] = [
      [{}, /source: expected a model folder or a Hugging Face repo id/],
      [{ source: '' }, /source: expected a model folder .* of 1 to 1000 characters, got ""/],
      [{ source: '   ' }, /source: expected a model folder/],
      [{ source: 'x'.repeat(1001) }, /source: expected a model folder .* of 1 to 1000 characters/],
      [{ source: `${SDXL}\0` }, /source: expected no NUL characters/],
      [{ source: 42 }, /source: expected a model folder/],
      [{ source: SDXL, device: 'cuda' }, /unknown key "device"/],
    ];
    for (const [body, message] of cases) {
      const reply = await alice.post('/api/model', body);
      assert.equal(reply.status, 400, `${JSON.stringify(body).slice(0, 80)}: ${reply.text.slice(0, 200)}`);
      assert.match(reply.json.error.message, message);
    }

    const missing = join(work, 'no-such-model');
    const notModel = join(work, 'not-a-model');
    mkdirSync(notModel, { recursive: true });
    writeFileSync(join(notModel, 'readme.txt'), 'no model here');
    const file = join(notModel, 'readme.txt');
    const expected: [string, RegExp][] = [
      [missing, /Model folder .*no-such-model does not exist/],
      [notModel, /not-a-model.*model_index\.json|model_index\.json.*not-a-model/],
      [file, /readme\.txt is a file/],
    ];
    for (const [source, message] of expected) {
      const reply = await alice.post('/api/model', { source });
      assert.equal(reply.status, 202, reply.text);
      assert.equal(reply.json.kind, 'model');
      assert.equal(reply.headers.location, `/api/jobs/${reply.json.id}`);
      const job = await alice.waitFor(reply.json.id);
      assert.equal(job.state, 'failed', source);
      assert.match(job.error!.message, message);
      assert.ok(job.error!.message.includes(source), `the message names ${source}: ${job.error!.message}`);
      assert.notEqual(job.error!.code, 'internal');
    }
    const model = await alice.get('/api/model');
    assert.equal(model.json.source, resolve(MODEL), 'the model in use did not change');
    assert.equal(model.json.modelsDir, undefined);
  });

  test('a model job waits its turn; then every session previews and renders with the new model, and films keep theirs', async () => {
    await alice.idle();
    const onSd = await alice.waitFor((await alice.post('/api/previews', { prompt: 'a cat', seeds: [5], steps: 2 })).json.id);
    const sdImage = (await alice.get(onSd.result.images[0].url)).body;

    const busy = await alice.post('/api/previews', LONG_PREVIEWS);
    const load = await bob.post('/api/model', { source: SDXL });
    assert.equal(load.status, 202, load.text);
    assert.deepEqual([load.json.kind, load.json.state, load.json.position], ['model', 'queued', 1]);
    const next = await alice.post('/api/previews', { prompt: 'a cat', seeds: [5], steps: 2 });
    assert.deepEqual([next.json.state, next.json.position], ['queued', 2]);
    assert.equal((await bob.get(`/api/jobs/${load.json.id}`)).json.position, 1, 'its place, seen by its session');
    assert.equal((await alice.get(`/api/jobs/${load.json.id}`)).status, 404, "another session's job");
    assert.equal((await alice.get('/api/model')).json.family, 'sd', 'the old model while the job waits');

    const stream = await bob.events(load.json.id);
    const states = stream.events.filter((event) => event.event === 'job').map((event) => (event.data as Job).state);
    assert.deepEqual([states[0], states.at(-1)], ['queued', 'done']);
    assert.ok(states.includes('running'));
    const loaded = await bob.waitFor(load.json.id);
    const busyJob = await alice.waitFor(busy.json.id);
    assert.equal(busyJob.state, 'done');
    assert.ok(Date.parse(loaded.startedAt!) >= Date.parse(busyJob.finishedAt!), 'loaded only after the running job ended');
    assert.equal(loaded.result.family, 'sdxl');
    assert.equal(loaded.result.source, resolve(SDXL));

    for (const client of [alice, bob]) {
      const model = await client.get('/api/model');
      assert.equal(model.status, 200);
      assert.deepEqual([model.json.family, model.json.preset, model.json.source], ['sdxl', 'turbo', resolve(SDXL)]);
      assert.deepEqual([model.json.defaults.width, model.json.defaults.height, model.json.defaults.steps], [64, 64, 4]);
    }

    // The preview queued behind the model job ran on the new model: same prompt and seed, another image.
    const onSdxl = await alice.waitFor(next.json.id);
    assert.equal(onSdxl.state, 'done', JSON.stringify(onSdxl.error));
    const sdxlImage = (await alice.get(onSdxl.result.images[0].url)).body;
    assert.deepEqual(pngSize(sdxlImage), { width: 64, height: 64 });
    assert.notDeepEqual(sdxlImage, sdImage, 'another model, another image');

    // A render now uses (and records) the new model; nothing is reused from the SD films.
    const render = await alice.post('/api/renders', { spec: filmSpec(['a cat', 'a dog']) });
    assert.equal(render.status, 202, render.text);
    const rendered = await alice.waitFor(render.json.id);
    assert.equal(rendered.state, 'done', JSON.stringify(rendered.error));
    assert.equal(rendered.result.transitionsReused, 0);
    const folder = rendered.result.workDir as string;
    assert.equal(parseFilmSpec(readFileSync(join(folder, 'spec.yaml'), 'utf8'), { path: 'spec.yaml' }).model, resolve(SDXL));
    const record = readFilmRecord(folder);
    assert.equal((await loadTransition(join(folder, record.transitions[0]!.dir))).model.source, resolve(SDXL));
    // The earlier films keep the model they were made with.
    const films = (await alice.get('/api/films')).json.films as { model?: string; workDir: string }[];
    assert.equal(films[0]!.model, resolve(SDXL));
    assert.equal(films.at(-1)!.model, resolve(MODEL));
    assert.equal(parseFilmSpec(readFileSync(join(films.at(-1)!.workDir, 'spec.yaml'), 'utf8'), { path: 'spec.yaml' }).model, resolve(MODEL));

    // Loading the same folder again loads nothing.
    const again = await alice.waitFor((await alice.post('/api/model', { source: SDXL })).json.id);
    assert.equal(again.state, 'done');
    assert.deepEqual(again.warnings, ['This model is already loaded.']);
  });

  test('--models-dir: folders outside it are refused, a name inside it loads, a symlink out of it fails; Hub ids still resolve', async () => {
    const models = join(work, 'models');
    mkdirSync(models, { recursive: true });
    cpSync(SDXL, join(models, 'sdxl'), { recursive: true });
    symlinkSync(resolve(MODEL), join(models, 'escape'));
    const confined = await startStudio({
      modelDir: MODEL,
      workDir: join(work, 'studio-confined'),
      port: 0,
      staticDir: join(work, 'static-confined'),
      modelsDir: models,
      hub: { offline: true, cacheDir: join(work, 'empty-hub-cache'), env: {} },
    });
    try {
      const client = new Client(new URL(confined.url));
      const realModels = realpathSync(models);
      assert.equal((await client.get('/api/model')).json.modelsDir, realModels);
      for (const source of [resolve(SDXL), '../studio', join(realModels, '..', 'models-elsewhere'), '~/models']) {
        const reply = await client.post('/api/model', { source });
        assert.equal(reply.status, 400, `${source}: ${reply.text}`);
        assert.equal(reply.json.error.code, 'outside_models_dir');
        assert.match(reply.json.error.message, /is outside the models folder/);
      }
      const escape = await client.waitFor((await client.post('/api/model', { source: 'escape' })).json.id);
      assert.equal(escape.state, 'failed');
      assert.match(escape.error!.message, /escape leads outside the models folder/);
      const hub = await client.waitFor((await client.post('/api/model', { source: 'test-org/never-downloaded' })).json.id);
      assert.equal(hub.state, 'failed');
      assert.match(hub.error!.message, /test-org\/never-downloaded at revision main is not in the local cache .*offline/);

      const inside = await client.post('/api/model', { source: 'sdxl' });
      assert.equal(inside.status, 202, inside.text);
      const job = await client.waitFor(inside.json.id);
      assert.equal(job.state, 'done', JSON.stringify(job.error));
      const model = (await client.get('/api/model')).json;
      assert.deepEqual([model.family, model.source], ['sdxl', join(realModels, 'sdxl')]);
    } finally {
      await confined.close();
    }
  });

  test('a Hub id is downloaded into the Hugging Face cache with its bytes as progress, then used', async () => {
    const files: Record<string, Uint8Array> = {};
    for (const path of filesUnder(SDXL)) files[path] = readFileSync(join(SDXL, path));
    const hub = await FakeHub.start({
      'test-org/tiny-sdxl-turbo': { commit: 'd'.repeat(40), files, lfs: Object.keys(files).filter((path) => path.endsWith('.onnx')) },
    });
    const cacheDir = join(work, 'hub-cache');
    // Slow transfers down a little, so that progress is reported while they run.
    const slowFetch: typeof fetch = async (input, init) => {
      const response = await fetch(input, init);
      if ((init?.method ?? 'GET') === 'GET' && Number(response.headers.get('content-length') ?? 0) > 20_000) await new Promise((wait) => setTimeout(wait, 150));
      return response;
    };
    const online = await startStudio({
      modelDir: MODEL,
      workDir: join(work, 'studio-hub'),
      port: 0,
      staticDir: join(work, 'static-hub'),
      hub: { endpoint: hub.endpoint, cacheDir, offline: false, env: {}, fetch: slowFetch },
    });
    try {
      const client = new Client(new URL(online.url));
      const reply = await client.post('/api/model', { source: 'test-org/tiny-sdxl-turbo' });
      assert.equal(reply.status, 202, reply.text);
      const stream = await client.events(reply.json.id);
      const jobs = stream.events.filter((event) => event.event === 'job').map((event) => event.data as Job);
      const final = jobs.at(-1)!;
      assert.equal(final.state, 'done', JSON.stringify(final.error));
      const downloading = jobs.filter((job) => job.state === 'running' && /^Downloading test-org\/tiny-sdxl-turbo/.test(job.progress.label));
      assert.ok(downloading.length > 0, `download progress: ${jobs.map((job) => job.progress.label).join(' / ')}`);
      const total = downloading[0]!.progress.total;
      assert.ok(total > 1_000_000, `total bytes ${total}`);
      for (const job of downloading) assert.ok(job.progress.done <= job.progress.total && job.progress.total === total);
      assert.equal(final.result.source, 'test-org/tiny-sdxl-turbo', 'a Hub id is recorded as given');
      assert.equal(final.result.family, 'sdxl');
      assert.ok(existsSync(join(cacheDir, 'models--test-org--tiny-sdxl-turbo', 'snapshots', 'd'.repeat(40), 'unet', 'model.onnx')));
      const previews = await client.waitFor((await client.post('/api/previews', { prompt: 'a cat', seeds: [1], steps: 1 })).json.id);
      assert.equal(previews.state, 'done', JSON.stringify(previews.error));
      assert.deepEqual(pngSize((await client.get(previews.result.images[0].url)).body), { width: 64, height: 64 });
    } finally {
      await online.close();
      await hub.stop();
    }
  });
});

describe('job queue (no server)', () => {
  test('FIFO, positions, owner isolation, cancel, failure messages', async () => {
    const queue = new JobQueue({ progressIntervalMs: 0 });
    const order: string[] = [];
    let open: () => void = () => {};
    const gate = { promise: new Promise<void>((resolve) => (open = resolve)), resolve: () => open() };
    const a = queue.submit('alice', 'test', async () => {
      order.push('a');
      await gate.promise;
      return 1;
    });
    const b = queue.submit('bob', 'test', async () => {
      order.push('b');
      throw new Error('boom');
    });
    const c = queue.submit('alice', 'test', async () => {
      order.push('c');
      return 3;
    });
    assert.deepEqual([b.position, c.position], [1, 2]);
    assert.equal(queue.get('bob', a.id), undefined);
    assert.equal(queue.cancel('bob', a.id), undefined);
    assert.equal(queue.subscribe('bob', a.id, () => {}), undefined);
    await new Promise((tick) => setTimeout(tick, 5));
    assert.equal(queue.get('alice', a.id)?.state, 'running');
    gate.resolve();
    await queue.idle();
    assert.deepEqual(order, ['a', 'b', 'c']);
    assert.equal(queue.get('bob', b.id)?.state, 'failed');
    assert.match(queue.get('bob', b.id)?.error?.message ?? '', /boom/);
    assert.equal(queue.get('alice', c.id)?.result, 3);
    assert.deepEqual(queue.list('alice').map((job) => job.id), [a.id, c.id]);
    await queue.close();
    assert.throws(() => queue.submit('alice', 'test', async () => 0), /shutting down/);
  });
});

/**
 * Provenance: PNG text chunks written by src/io/png-text.ts (checked with sharp's reader and
 * zlib's CRC-32), the studio's previews and live frames carrying `parameters` and our JSON key,
 * previews kept on the server per session, and a film carrying its spec in its metadata comment
 * (read back with ffmpeg). Tiny SD-Turbo fixture.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 as zlibCrc32 } from 'node:zlib';
import sharp from 'sharp';
import { crc32, readPngText, withPngText } from '../src/io/png-text.ts';
import { locateFfmpeg } from '../src/io/ffmpeg.ts';
import { parseProvenance, previewText } from '../src/studio/provenance.ts';
import { startStudio, type Studio } from '../src/studio/server.ts';
import { parseFilmSpec } from '../src/film/spec.ts';
import { modelDir } from './helpers/golden.ts';
import { StudioClient } from './helpers/studio-client.ts';

async function tinyPng(): Promise<Uint8Array> {
  return new Uint8Array(await sharp({ create: { width: 3, height: 2, channels: 3, background: { r: 200, g: 10, b: 30 } } }).png().toBuffer());
}

/** The text chunks as sharp (libvips) reads them: an independent reader. */
async function sharpComments(png: Uint8Array): Promise<Record<string, string>> {
  const { comments } = await sharp(png).metadata();
  return Object.fromEntries((comments ?? []).map((comment) => [comment.keyword, comment.text]));
}

describe('PNG text chunks (no server)', () => {
  test('CRC-32 matches zlib', () => {
    for (const text of ['', 'IEND', 'tEXtparameters\0a red cube', 'x'.repeat(1000)]) {
      const bytes = new TextEncoder().encode(text);
      assert.equal(crc32(bytes), zlibCrc32(bytes), JSON.stringify(text.slice(0, 20)));
    }
  });

  test('Latin-1 and UTF-8 text round-trips; sharp reads it; the pixels are unchanged', async () => {
    const png = await tinyPng();
    const texts = { parameters: 'a café at dawn\nSteps: 4, Seed: 7', latentblend: JSON.stringify({ prompt: '東京の夜 🌃', seed: 7 }) };
    const tagged = withPngText(png, texts);
    assert.deepEqual(Object.fromEntries(readPngText(tagged)), texts);
    assert.deepEqual(await sharpComments(tagged), texts);
    const [before, after] = await Promise.all([sharp(png).raw().toBuffer(), sharp(tagged).raw().toBuffer()]);
    assert.deepEqual(after, before);
    // Writing a key again replaces it.
    const again = withPngText(tagged, { parameters: 'other' });
    assert.equal(readPngText(again).get('parameters'), 'other');
    assert.equal([...readPngText(again).keys()].filter((key) => key === 'parameters').length, 1);
    // A damaged chunk is skipped, not trusted.
    const damaged = Uint8Array.from(tagged);
    const at = Buffer.from(damaged).indexOf('a caf');
    damaged[at] = 'b'.charCodeAt(0);
    assert.equal(readPngText(damaged).has('parameters'), false);
    assert.throws(() => readPngText(new Uint8Array([1, 2, 3])), /not a PNG/);
  });

  test('the provenance JSON is read back; foreign or broken JSON is not', () => {
    const texts = previewText({ prompt: 'a red cube', negativePrompt: 'blurry', seed: 42, model: '/m/tiny-sd-turbo/onnx', scheduler: 'EulerDiscreteScheduler', steps: 4, guidanceScale: 0, width: 64, height: 64 });
    assert.equal(texts.parameters, 'a red cube\nNegative prompt: blurry\nSteps: 4, Sampler: EulerDiscreteScheduler, CFG scale: 0, Seed: 42, Size: 64x64, Model: tiny-sd-turbo');
    const read = parseProvenance(new Map(Object.entries(texts)));
    assert.equal(read?.kind, 'preview');
    assert.equal(read?.kind === 'preview' ? read.seed : undefined, 42);
    assert.equal(parseProvenance(new Map([['parameters', texts.parameters!]])), undefined);
    assert.equal(parseProvenance(new Map([['latentblend', '{"format":"latentblend-image","version":1,"kind":"preview","prompt":"x"}']])), undefined);
    assert.equal(parseProvenance(new Map([['latentblend', 'not json']])), undefined);
  });
});

describe('provenance on a studio', () => {
  const work = mkdtempSync(join(tmpdir(), 'latentblend-studio-provenance-'));
  let studio: Studio;
  let alice: StudioClient;

  before(async () => {
    studio = await startStudio({ modelDir: modelDir('tiny-sd-turbo'), workDir: join(work, 'studio'), port: 0 });
    alice = new StudioClient(new URL(studio.url));
  });

  after(async () => {
    await studio?.close();
    rmSync(work, { recursive: true, force: true });
  });

  test('previews carry their parameters, and are kept on the server for the session', async () => {
    const reply = await alice.post('/api/previews', { prompt: 'a red cube', negativePrompt: 'blurry, text', seeds: [7, 8], steps: 2, guidanceScale: 1.5 });
    assert.equal(reply.status, 202, reply.text);
    const job = await alice.waitFor(reply.json.id);
    assert.equal(job.state, 'done', JSON.stringify(job.error));
    const png = (await alice.get(job.result.images[0].url)).body;
    const comments = await sharpComments(png);
    assert.equal(comments.parameters, `a red cube\nNegative prompt: blurry, text\nSteps: 2, Sampler: ${(await alice.get('/api/model')).json.schedulerClass}, CFG scale: 1.5, Seed: 7, Size: 64x64, Model: tiny-sd-turbo`);
    const ours = JSON.parse(comments.latentblend!);
    assert.deepEqual(
      { kind: ours.kind, prompt: ours.prompt, negativePrompt: ours.negativePrompt, seed: ours.seed, steps: ours.steps, guidanceScale: ours.guidanceScale, width: ours.width, height: ours.height },
      { kind: 'preview', prompt: 'a red cube', negativePrompt: 'blurry, text', seed: 7, steps: 2, guidanceScale: 1.5, width: 64, height: 64 },
    );
    assert.match(ours.model, /tiny-sd-turbo/);

    const listed = (await alice.get('/api/previews')).json.batches;
    assert.equal(listed.length, 1);
    assert.deepEqual(
      { id: listed[0].id, prompt: listed[0].prompt, seeds: listed[0].images.map((image: { seed: number }) => image.seed), steps: listed[0].steps },
      { id: job.id, prompt: 'a red cube', seeds: [7, 8], steps: 2 },
    );
    const eve = new StudioClient(alice.base);
    assert.deepEqual((await eve.get('/api/previews')).json.batches, [], 'per session');
    assert.equal((await eve.request('DELETE', `/api/previews/${job.id}`)).status, 404);
    // Without ?images=1 the images stay (a keyframe may show one); with it they go.
    const second = await alice.waitFor((await alice.post('/api/previews', { prompt: 'a blue sphere', seeds: [3], steps: 1 })).json.id);
    assert.equal((await alice.request('DELETE', `/api/previews/${second.id}`)).status, 200);
    assert.equal((await alice.get(second.result.images[0].url)).status, 200);
    const removed = await alice.request('DELETE', `/api/previews/${job.id}?images=1`);
    assert.equal(removed.status, 200, removed.text);
    assert.equal((await alice.get(job.result.images[0].url)).status, 404, 'its images are gone');
    assert.equal((await alice.get(job.result.images[1].url)).status, 404);
    assert.deepEqual((await alice.get('/api/previews')).json.batches, []);
  });

  test('computed frames say what they blend; the film carries its spec in its metadata comment', async () => {
    const spec = { fps: 4, transitionDuration: 1, branchesPerTransition: 3, keyframes: [{ prompt: 'a cat', seed: 1 }, { prompt: 'a dog', seed: 2 }] };
    const reply = await alice.post('/api/renders', { spec });
    assert.equal(reply.status, 202, reply.text);
    const events = await alice.watch(reply.json.id, (event, data) => event === 'job' && ['done', 'failed', 'cancelled'].includes(data.state));
    const final = events.at(-1)!.data;
    assert.equal(final.state, 'done', JSON.stringify(final.error));
    const middle = events.filter((event) => event.event === 'frame').find((event) => event.data.fract > 0 && event.data.fract < 1)!;
    const comments = await sharpComments((await alice.get(middle.data.url)).body);
    const frame = JSON.parse(comments.latentblend!);
    assert.equal(frame.kind, 'frame');
    assert.deepEqual([frame.from, frame.to, frame.transition], [{ prompt: 'a cat', seed: 1 }, { prompt: 'a dog', seed: 2 }, 0]);
    assert.equal(frame.fract, middle.data.fract);
    assert.match(comments.parameters!, /^a cat\n.*Blend: a cat -> a dog/s);

    const film = join(work, 'film.mp4');
    writeFileSync(film, (await alice.get(final.result.filmUrl)).body);
    const metadata = execFileSync(locateFfmpeg().path, ['-v', 'error', '-i', film, '-f', 'ffmetadata', '-'], { encoding: 'utf8' });
    // ffmetadata escapes newlines and '=' ';' '#' '\' with a backslash.
    const comment = /^comment=((?:[^\n\\]|\\.|\\\n)*)$/m.exec(metadata)?.[1]?.replace(/\\(.)/gs, '$1');
    assert.ok(comment !== undefined, metadata);
    const carried = parseFilmSpec(comment, { path: 'comment.yaml' });
    assert.deepEqual(carried.keyframes.map((keyframe) => [keyframe.prompt, keyframe.seed]), [['a cat', 1], ['a dog', 2]]);
    assert.match(String(carried.model), /tiny-sd-turbo/);
  });
});

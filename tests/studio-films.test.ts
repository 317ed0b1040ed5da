/**
 * Nothing lost across restarts (src/studio/film-library.ts): a render whose server is killed
 * shows after a restart as 'interrupted' and resumes, reusing its finished transitions; films
 * are renamed (download names follow) and deleted; another session can do neither. A real
 * `latentblend studio` process is killed with SIGKILL, then a studio on the same work folder
 * takes over. Tiny SD-Turbo fixture.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startStudio, type Studio } from '../src/studio/server.ts';
import { attachmentHeader, safeFileStem } from '../src/studio/film-library.ts';
import { modelDir } from './helpers/golden.ts';
import { StudioClient } from './helpers/studio-client.ts';
import { spawnStudio } from './helpers/studio-process.ts';

const MODEL = modelDir('tiny-sd-turbo');
const SPEC = {
  fps: 8,
  transitionDuration: 0.5,
  branchesPerTransition: 5,
  keyframes: ['a red cube', 'a blue sphere', 'a green cone', 'a yellow torus'].map((prompt, index) => ({ prompt, seed: index + 1 })),
};

describe('download names (no server)', () => {
  test('titles become safe file names; Unicode kept in filename*', () => {
    assert.equal(safeFileStem('A red cube, at dawn!'), 'A-red-cube-at-dawn');
    assert.equal(safeFileStem('../../etc/passwd'), 'etc-passwd');
    assert.equal(safeFileStem('  '), 'film');
    assert.equal(safeFileStem('ünïcode 東京'), 'ünïcode-東京');
    assert.equal(safeFileStem('x'.repeat(300)).length, 80);
    const header = attachmentHeader('Ünïcode "film" 東京', 'mp4');
    assert.match(header, /^attachment; filename="Unicode-film-\.mp4"; filename\*=UTF-8''%C3%9Cn%C3%AFcode-film-%E6%9D%B1%E4%BA%AC\.mp4$/);
  });
});

describe('films across a restart', () => {
  const work = mkdtempSync(join(tmpdir(), 'latentblend-studio-films-'));
  const workDir = join(work, 'studio');
  let studio: Studio | undefined;
  let alice: StudioClient;
  let filmId: string;
  let finishedBefore: number;

  before(async () => {
    // A real studio process, killed in the middle of a render.
    const crashed = await spawnStudio(['--model', MODEL, '--work-dir', workDir, '--port', '0']);
    try {
      alice = new StudioClient(new URL(crashed.url));
      const reply = await alice.post('/api/renders', { spec: SPEC });
      assert.equal(reply.status, 202, reply.text);
      // Killed once the second transition has started (the first one is saved).
      await alice.watch(reply.json.id, (event, data) => event === 'frame' && data.transition >= 1);
    } finally {
      await crashed.kill();
    }
    studio = await startStudio({ modelDir: MODEL, modelSource: MODEL, workDir, port: 0 });
    alice.base = new URL(studio.url);
  });

  after(async () => {
    await studio?.close();
    rmSync(work, { recursive: true, force: true });
  });

  test('after the restart the render is listed as interrupted, with its finished transitions', async () => {
    const films = (await alice.get('/api/films')).json.films;
    assert.equal(films.length, 1);
    const [film] = films;
    filmId = film.id;
    assert.equal(film.state, 'interrupted');
    assert.equal(film.resumable, true);
    assert.equal(film.title, 'a red cube', 'named after its first prompt');
    assert.equal(film.filmUrl, undefined, 'no film yet');
    assert.equal(film.transitionsTotal, 3);
    assert.ok(film.transitionsFinished >= 1 && film.transitionsFinished < 3, `finished ${film.transitionsFinished}`);
    finishedBefore = film.transitionsFinished;
    // Another session sees nothing of it.
    const eve = new StudioClient(alice.base);
    assert.deepEqual((await eve.get('/api/films')).json.films, []);
    assert.equal((await eve.post(`/api/films/${filmId}/resume`)).status, 404);
  });

  test('rename: a title of 1 to 200 characters, no control characters; others get 404', async () => {
    for (const title of ['', '   ', 'x'.repeat(201), 'two\nlines']) {
      const reply = await alice.request('PATCH', `/api/films/${filmId}`, { json: { title } });
      assert.equal(reply.status, 400, `${JSON.stringify(title)}: ${reply.text}`);
      assert.match(reply.json.error.message, /title/);
    }
    assert.equal((await alice.request('PATCH', `/api/films/${filmId}`, { json: { title: 'ok', extra: 1 } })).status, 400);
    const eve = new StudioClient(alice.base);
    assert.equal((await eve.request('PATCH', `/api/films/${filmId}`, { json: { title: 'mine' } })).status, 404);
    assert.equal((await alice.request('PATCH', '/api/films/not-a-film', { json: { title: 'x' } })).status, 404);
    const renamed = await alice.request('PATCH', `/api/films/${filmId}`, { json: { title: '  Shapes, “at dawn”  ' } });
    assert.equal(renamed.status, 200, renamed.text);
    assert.equal(renamed.json.title, 'Shapes, “at dawn”');
  });

  test('resume reuses the finished transitions; the film keeps its title, place and download name', async () => {
    const before = (await alice.get('/api/films')).json.films[0];
    const reply = await alice.post(`/api/films/${filmId}/resume`);
    assert.equal(reply.status, 202, reply.text);
    assert.equal(reply.json.kind, 'render');
    assert.equal(reply.json.filmId, filmId);
    assert.equal((await alice.post(`/api/films/${filmId}/resume`)).status, 409, 'not twice at once');
    assert.equal((await alice.request('DELETE', `/api/films/${filmId}`)).status, 409, 'not deleted while it renders');
    const job = await alice.waitFor(reply.json.id);
    assert.equal(job.state, 'done', JSON.stringify(job.error));
    assert.equal(job.result.filmId, filmId);
    assert.equal(job.result.transitionsReused, finishedBefore);
    assert.equal(job.result.transitions, 3);
    const [film] = (await alice.get('/api/films')).json.films;
    assert.equal(film.state, 'done');
    assert.equal(film.resumable, false);
    assert.equal(film.title, 'Shapes, “at dawn”');
    assert.equal(film.createdAt, before.createdAt);
    assert.equal(film.downloadName, 'Shapes-at-dawn.mp4');
    const download = await alice.get(`${film.filmUrl}?download=1`);
    assert.equal(download.status, 200);
    assert.equal(download.headers['content-disposition'], `attachment; filename="Shapes-at-dawn.mp4"; filename*=UTF-8''Shapes-at-dawn.mp4`);
    const sheet = await alice.get(`${film.contactSheetUrl}?download=1`);
    assert.match(String(sheet.headers['content-disposition']), /filename="Shapes-at-dawn-contact-sheet\.png"/);
    assert.equal((await alice.post(`/api/films/${filmId}/resume`)).json.error.code, 'finished');
  });

  test('a film made with another model is not resumed with this one', async () => {
    const record = join(workDir, 'sessions');
    const session = readdirSync(record)[0]!;
    const path = join(record, session, 'films', filmId, 'studio.json');
    const original = readFileSync(path, 'utf8');
    writeFileSync(path, JSON.stringify({ ...JSON.parse(original), state: 'cancelled', model: 'someone/else' }));
    try {
      const reply = await alice.post(`/api/films/${filmId}/resume`);
      assert.equal(reply.status, 409);
      assert.equal(reply.json.error.code, 'model_changed');
      assert.match(reply.json.error.message, /someone\/else/);
    } finally {
      writeFileSync(path, original);
    }
  });

  test('delete removes the film folder and its live frames; others get 404', async () => {
    const eve = new StudioClient(alice.base);
    assert.equal((await eve.request('DELETE', `/api/films/${filmId}`)).status, 404);
    const sessions = join(workDir, 'sessions');
    const session = readdirSync(sessions).find((id) => existsSync(join(sessions, id, 'films', filmId)))!;
    const files = join(sessions, session, 'files');
    const framesBefore = readdirSync(files).length;
    assert.ok(framesBefore > 0);
    const reply = await alice.request('DELETE', `/api/films/${filmId}`);
    assert.equal(reply.status, 200, reply.text);
    assert.deepEqual(reply.json, { deleted: filmId });
    assert.equal(existsSync(join(sessions, session, 'films', filmId)), false);
    assert.deepEqual(readdirSync(files), [], 'the live frames of both renders are gone');
    assert.deepEqual((await alice.get('/api/films')).json.films, []);
    assert.equal((await alice.request('DELETE', `/api/films/${filmId}`)).status, 404);
  });
});

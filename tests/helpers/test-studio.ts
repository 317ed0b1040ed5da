/**
 * A studio server on a fixture model for one describe block: call it inside the block; it starts
 * the studio in a fresh work folder before the block's tests and closes it (and removes the
 * folder) after them. Read `studio` and `client` inside the tests.
 */
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Studio } from '../../src/studio/server.ts';
import { StudioClient } from './studio-client.ts';

export interface TestStudio {
  /** The running studio (set before the first test). */
  readonly studio: Studio;
  /** A client with its own session. */
  readonly client: StudioClient;
  /** The studio's work folder. */
  readonly workDir: string;
}

/** Starts the studio on `modelDir` before the enclosing describe's tests; `prefix` names its temporary work folder. */
export function studioForTests(modelDir: string, prefix: string): TestStudio {
  let studio: Studio | undefined;
  let client: StudioClient | undefined;
  let workDir: string | undefined;
  before(async () => {
    workDir = mkdtempSync(join(tmpdir(), prefix));
    // Loaded here: a file whose studio tests are skipped never loads the server.
    const { startStudio } = await import('../../src/studio/server.ts');
    studio = await startStudio({ modelDir, workDir, port: 0 });
    client = new StudioClient(new URL(studio.url));
  });
  after(async () => {
    await studio?.close();
    if (workDir !== undefined) rmSync(workDir, { recursive: true, force: true });
  });
  return {
    get studio() {
      if (studio === undefined) throw new Error('the test studio is not started yet');
      return studio;
    },
    get client() {
      if (client === undefined) throw new Error('the test studio is not started yet');
      return client;
    },
    get workDir() {
      if (workDir === undefined) throw new Error('the test studio is not started yet');
      return workDir;
    },
  };
}

/**
 * Renders `spec` as a GIF through the API, asserts it was accepted and finished (within 90 s),
 * and returns the job with the spec.yaml of the session's first film folder.
 */
export async function renderGif(client: StudioClient, spec: unknown): Promise<{ job: any; writtenSpec: string }> {
  const accepted = await client.post('/api/renders', { spec, format: 'gif' });
  assert.equal(accepted.status, 202, accepted.text);
  const job = await client.waitFor(accepted.json.id, 90_000);
  assert.equal(job.state, 'done', JSON.stringify(job.error));
  const films = join(job.result.workDir, '..');
  return { job, writtenSpec: readFileSync(join(films, readdirSync(films)[0]!, 'spec.yaml'), 'utf8') };
}

/**
 * IP-Adapter in the studio (issue #13), through the HTTP API on the tiny SD 1.5 fixture and the
 * tiny IP-Adapter exported for it: the model says it takes an IP-Adapter, a film with uploaded
 * image prompts renders with it (the transitions record the adapter and their pictures), image
 * prompts are only ever uploaded pictures, and an adapter made for another model is refused
 * before anything is queued. The page's "Image prompt" card (Debian's headless Chromium) takes
 * a picked and a dropped image prompt and sends the IP-Adapter keys, and is not offered when the
 * model says it cannot take an IP-Adapter; a screenshot goes to test-artifacts/studio-ip-adapter/.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fromSpec, toSpec } from '../src/studio/web/state.ts';
import { parseRenderRequest } from '../src/studio/requests.ts';
import { renderGif, studioForTests } from './helpers/test-studio.ts';
import { FIXTURES, modelDir, ROOT } from './helpers/golden.ts';
import { launchStudioChromium, openStudioPage } from './helpers/chromium.ts';

const ARTIFACTS = join(ROOT, 'test-artifacts', 'studio-ip-adapter');

const IP_ADAPTER = join(FIXTURES, 'models', 'tiny-sd15-ip-adapter', 'onnx');
const SDXL_IP_ADAPTER = join(FIXTURES, 'models', 'tiny-sdxl-ip-adapter', 'onnx');
const IP_A = join(FIXTURES, 'goldens', 'tiny-sd15-ip-adapter', 'ip-a.png');
const IP_B = join(FIXTURES, 'goldens', 'tiny-sd15-ip-adapter', 'ip-b.png');
const PICTURE_ID = /^picture-[0-9a-f]{24}\.png$/;

/** A two-keyframe film spec of few frames with an IP-Adapter and these image prompts. */
function spec(ipAdapter: string, ipA: string, ipB: string) {
  return {
    steps: 4,
    guidanceScale: 0,
    maxBranches: 3,
    fps: 4,
    transitionDuration: 1,
    ipAdapter,
    ipAdapterScale: 0.7,
    keyframes: [
      { prompt: 'a cat', seed: 1, ipImage: ipA },
      { prompt: 'a dog', seed: 2, ipImage: ipB },
    ],
  };
}

test("the page's draft carries the IP-Adapter keys only when every keyframe has an image prompt", () => {
  const id = (digit: string) => `picture-${digit.repeat(24)}.png`;
  const full = toSpec({
    keyframes: [
      { id: 'a', prompt: 'a cat', seed: 1, ipImage: id('1') },
      { id: 'b', prompt: 'a dog', seed: 2, ipImage: id('2'), ipAdapterScale: 0.25 },
    ],
    settings: { budgetMode: 'branches', ipAdapter: ' models/ip ', ipAdapterScale: 0.5 },
  });
  assert.equal(full.ipAdapter, 'models/ip');
  assert.equal(full.ipAdapterScale, 0.5);
  assert.deepEqual(full.keyframes.map((keyframe) => keyframe.ipImage), [id('1'), id('2')]);
  assert.deepEqual(full.keyframes.map((keyframe) => keyframe.ipAdapterScale), [undefined, 0.25]);
  assert.equal(parseRenderRequest({ spec: full }).spec.ipAdapter, 'models/ip', 'a valid film spec');
  // A keyframe without an image prompt: no IP-Adapter keys at all (the film spec would refuse a half one).
  const partial = toSpec({
    keyframes: [{ id: 'a', prompt: 'a cat', seed: 1, ipImage: id('1') }, { id: 'b', prompt: 'a dog', seed: 2 }],
    settings: { budgetMode: 'branches', ipAdapter: 'models/ip', ipAdapterScale: 0.5 },
  });
  assert.equal(partial.ipAdapter, undefined);
  assert.equal(partial.ipAdapterScale, undefined);
  assert.ok(partial.keyframes.every((keyframe) => keyframe.ipImage === undefined && keyframe.ipAdapterScale === undefined));
  // Read back from a parsed spec (paths): the film-wide image prompt goes to keyframes without their own.
  const draft = fromSpec({ ...full, ipImage: `/x/files/${id('3')}`, keyframes: [full.keyframes[0]!, { prompt: 'a dog', seed: 2, ipAdapterScale: 0.25 }] });
  assert.deepEqual([draft.settings.ipAdapter, draft.settings.ipAdapterScale], ['models/ip', 0.5]);
  assert.deepEqual(draft.keyframes.map((keyframe) => keyframe.ipImage), [id('1'), id('3')]);
  assert.deepEqual(draft.keyframes.map((keyframe) => keyframe.ipAdapterScale), [undefined, 0.25]);
});

describe('IP-Adapter in the studio', { timeout: 120_000 }, () => {
  const tiny = studioForTests(modelDir('tiny-sd15'), 'latentblend-studio-ip-adapter-');

  test('a film with an IP-Adapter and uploaded image prompts renders; other image prompts and adapters are refused', async () => {
    assert.equal((await tiny.client.get('/api/model')).json.ipAdapter, true);
    const a = await tiny.client.uploadPng(readFileSync(IP_A));
    const b = await tiny.client.uploadPng(readFileSync(IP_B));
    assert.equal(a.status, 201);
    assert.equal(b.status, 201);
    assert.notEqual(a.json.id, b.json.id);

    for (const outside of ['/etc/hostname', IP_A, '../x.png']) {
      const refused = await tiny.client.post('/api/renders', { spec: spec(IP_ADAPTER, a.json.id, outside), format: 'gif' });
      assert.equal(refused.status, 400, outside);
      assert.match(refused.json.error.message, /keyframes\[1\]\.ipImage: expected the id of a picture uploaded to this studio/);
    }
    const wrongFamily = await tiny.client.post('/api/renders', { spec: spec(SDXL_IP_ADAPTER, a.json.id, b.json.id), format: 'gif' });
    assert.equal(wrongFamily.status, 400, wrongFamily.text);
    assert.match(wrongFamily.json.error.message, /ipAdapter: .* does not fit this studio's model .*SDXL/);
    const notAnAdapter = await tiny.client.post('/api/renders', { spec: spec(modelDir('tiny-sd15'), a.json.id, b.json.id), format: 'gif' });
    assert.equal(notAnAdapter.status, 400, notAnAdapter.text);
    assert.match(notAnAdapter.json.error.message, /ipAdapter: .*latentblend-ip-adapter\.json/);
    const withControlNet = await tiny.client.post('/api/renders', {
      spec: { ...spec(IP_ADAPTER, a.json.id, b.json.id), controlnet: join(FIXTURES, 'models', 'tiny-sd15-controlnet', 'onnx'), controlImage: a.json.id },
      format: 'gif',
    });
    assert.equal(withControlNet.status, 400, withControlNet.text);
    assert.match(withControlNet.json.error.message, /ipAdapter: an IP-Adapter together with a ControlNet is not supported yet/);
    assert.equal((await tiny.client.get('/api/jobs')).json.jobs.length, 0, 'nothing was queued');

    const { job, writtenSpec: written } = await renderGif(tiny.client, spec(IP_ADAPTER, a.json.id, b.json.id));
    assert.equal(job.result.frames, 3);
    assert.match(written, new RegExp(`ipImage: .*/files/${a.json.id}`));
    assert.match(written, new RegExp(`ipImage: .*/files/${b.json.id}`));
    assert.match(written, /ipAdapterScale: 0\.7/);
    // The transition was computed with the adapter, two different image prompts and the scale.
    const transitions = join(job.result.workDir, 'transitions');
    const [transition] = readdirSync(transitions);
    const { ipAdapter } = JSON.parse(readFileSync(join(transitions, transition!, 'transition.json'), 'utf8'));
    assert.equal(ipAdapter?.ipAdapter, IP_ADAPTER, 'the transition records its IP-Adapter');
    assert.equal(typeof ipAdapter.pictureA, 'string');
    assert.notEqual(ipAdapter.pictureA, ipAdapter.pictureB);
    assert.deepEqual([ipAdapter.scaleA, ipAdapter.scaleB], [0.7, 0.7]);
  });

  test('in the page: the Image prompt card takes a picked and a dropped image prompt and sends the IP-Adapter keys', async () => {
    const browser = await launchStudioChromium();
    try {
      const { page, errors } = await openStudioPage(browser, tiny.studio.url);
      const card = page.getByRole('region', { name: 'Image prompt' });
      assert.ok(await card.isVisible(), 'offered for an SD 1.5 model');
      // Two prompt keyframes on the timeline, as a saved draft.
      await page.evaluate(() =>
        localStorage.setItem(
          'latentblend-studio-draft-v1',
          JSON.stringify({ keyframes: [{ id: 'ka', prompt: 'a cat', seed: 1 }, { id: 'kb', prompt: 'a dog', seed: 2 }], settings: { budgetMode: 'branches', steps: 4, maxBranches: 3 } }),
        ),
      );
      await page.reload();
      await page.waitForSelector('body[data-state="ready"]', { timeout: 20_000 });
      await card.getByLabel('IP-Adapter folder or Hub id').fill(IP_ADAPTER);
      await card.getByLabel('IP-Adapter folder or Hub id').press('Tab');
      await card.getByLabel('IP-Adapter scale', { exact: true }).fill('0.6');
      await card.getByLabel('IP-Adapter scale', { exact: true }).press('Tab');
      await card.getByLabel('IP-Adapter scale of keyframe 2').fill('0.3');
      await card.getByLabel('IP-Adapter scale of keyframe 2').press('Tab');
      // Keyframe 1: picked.
      const [chooser] = await Promise.all([page.waitForEvent('filechooser'), card.getByRole('button', { name: 'Pick an image prompt for keyframe 1' }).click()]);
      await chooser.setFiles(IP_A);
      await card.getByRole('img', { name: 'Image prompt of keyframe 1' }).waitFor({ timeout: 20_000 });
      assert.match(await card.getByRole('status').textContent() ?? '', /1 of 2 keyframes/);
      // Keyframe 2: dropped on its box (not a new keyframe).
      const transfer = await page.evaluateHandle((base64) => {
        const bytes = Uint8Array.from(atob(base64), (char) => char.charCodeAt(0));
        const data = new DataTransfer();
        data.items.add(new File([bytes], 'ip-b.png', { type: 'image/png' }));
        return data;
      }, readFileSync(IP_B).toString('base64'));
      const box = card.getByRole('listitem', { name: 'Image prompt of keyframe 2' });
      await box.dispatchEvent('dragover', { dataTransfer: transfer });
      await box.dispatchEvent('drop', { dataTransfer: transfer });
      await card.getByRole('img', { name: 'Image prompt of keyframe 2' }).waitFor({ timeout: 20_000 });
      await page.waitForFunction(
        () => [...document.querySelectorAll<HTMLImageElement>('#ip-panel img')].every((image) => image.naturalWidth > 0),
        undefined,
        { timeout: 20_000 },
      );
      assert.match(await card.getByRole('status').textContent() ?? '', /Every keyframe has an image prompt/);
      const draft = await page.evaluate(() => JSON.parse(localStorage.getItem('latentblend-studio-draft-v1')!));
      assert.equal(draft.keyframes.length, 2, 'the drop made no keyframe');
      assert.match(draft.keyframes[0].ipImage, PICTURE_ID);
      assert.match(draft.keyframes[1].ipImage, PICTURE_ID);
      assert.notEqual(draft.keyframes[0].ipImage, draft.keyframes[1].ipImage);
      mkdirSync(ARTIFACTS, { recursive: true });
      await card.screenshot({ path: join(ARTIFACTS, 'image-prompt-card.png') });

      // The spec the page sends: caught before it reaches the server.
      let sent: any;
      await page.route('**/api/renders', async (route) => {
        sent = JSON.parse(route.request().postData() ?? 'null');
        await route.fulfill({ status: 400, contentType: 'application/json', body: JSON.stringify({ error: { code: 'invalid_input', message: 'caught by the test' } }) });
      });
      await page.getByRole('button', { name: 'Render film' }).click();
      for (let tries = 0; sent === undefined && tries < 100; tries += 1) await new Promise((resolve) => setTimeout(resolve, 100));
      assert.ok(sent !== undefined, 'the page sent a render request');
      assert.equal(sent.spec.ipAdapter, IP_ADAPTER);
      assert.equal(sent.spec.ipAdapterScale, 0.6);
      assert.deepEqual(sent.spec.keyframes.map((keyframe: { ipAdapterScale?: number }) => keyframe.ipAdapterScale), [undefined, 0.3]);
      assert.deepEqual(
        sent.spec.keyframes.map((keyframe: { ipImage?: string }) => keyframe.ipImage),
        draft.keyframes.map((keyframe: { ipImage: string }) => keyframe.ipImage),
      );
      assert.deepEqual(errors, []);

      // A model that cannot take an IP-Adapter (as an older server says nothing): no card, for a
      // draft without IP-Adapter settings.
      const other = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      const plain = await other.newPage();
      await plain.route('**/api/model', async (route) => {
        const response = await route.fetch();
        const { ipAdapter: _ipAdapter, ...rest } = await response.json();
        await route.fulfill({ response, json: rest });
      });
      await plain.goto(tiny.studio.url);
      await plain.waitForSelector('body[data-state="ready"]', { timeout: 20_000 });
      assert.equal(await plain.locator('#ip-panel').isHidden(), true, 'not offered');
      await other.close();
    } finally {
      await browser.close();
    }
  });
});

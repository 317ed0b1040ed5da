/**
 * ControlNet in the studio (issue #13), through the HTTP API on the tiny SD 1.5 fixture (which
 * has the residual UNet export) and the tiny ControlNet: the model says it takes a ControlNet,
 * a control picture is uploaded like a picture keyframe, its Canny map is made on request, a
 * film with a ControlNet renders, and control pictures are only ever uploaded pictures. The page's
 * ControlNet card (Debian's headless Chromium) takes a control picture and shows its Canny map,
 * and a keyframe card takes a control picture of its own;
 * a screenshot goes to test-artifacts/studio-controlnet/.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { checkRenderRequest, type StudioModel } from '../src/studio/runners.ts';
import { parseRenderRequest } from '../src/studio/requests.ts';
import { canny } from '../src/image/canny.ts';
import { readPicture } from '../src/io/picture.ts';
import { renderGif, studioForTests } from './helpers/test-studio.ts';
import { FIXTURES, modelDir, ROOT } from './helpers/golden.ts';
import { launchStudioChromium, openStudioPage } from './helpers/chromium.ts';

const ARTIFACTS = join(ROOT, 'test-artifacts', 'studio-controlnet');

const CONTROLNET = join(FIXTURES, 'models', 'tiny-sd15-controlnet', 'onnx');
const CONTROL_PICTURE = join(FIXTURES, 'goldens', 'tiny-sd15-controlnet', 'control-64.png');

describe('ControlNet in the studio', { timeout: 120_000 }, () => {
  const tiny = studioForTests(modelDir('tiny-sd15'), 'latentblend-studio-controlnet-');

  test('the model says it takes a ControlNet; the Canny map of an uploaded picture is made on request', async () => {
    assert.equal((await tiny.client.get('/api/model')).json.controlnet, true);
    const uploaded = await tiny.client.uploadPng(readFileSync(CONTROL_PICTURE));
    assert.equal(uploaded.status, 201);
    const map = await tiny.client.post(`/api/pictures/${uploaded.json.id}/canny`);
    assert.equal(map.status, 201, map.text);
    assert.match(map.json.id, /^picture-[0-9a-f]{24}\.png$/);
    assert.notEqual(map.json.id, uploaded.json.id);
    const png = await tiny.client.get(map.json.url);
    const { data, info } = await sharp(png.body).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const expected = canny(await readPicture(CONTROL_PICTURE));
    assert.deepEqual([info.width, info.height], [expected.width, expected.height]);
    assert.ok(Buffer.from(expected.data).equals(data), 'the map is the Canny edge map of the picture');
    assert.ok(data.some((value) => value === 255) && data.some((value) => value === 0), 'edges and background');
    assert.equal((await tiny.client.post('/api/pictures/picture-000000000000000000000000.png/canny')).status, 404);
    assert.equal((await tiny.client.post('/api/pictures/..%2Fsecret/canny')).status, 400);
  });

  test('a film with a ControlNet and an uploaded control picture renders; other control pictures are refused', async () => {
    const uploaded = await tiny.client.uploadPng(readFileSync(CONTROL_PICTURE));
    const spec = (controlImage: string) => ({
      steps: 4,
      guidanceScale: 0,
      maxBranches: 3,
      fps: 4,
      transitionDuration: 1,
      controlnet: CONTROLNET,
      controlImage,
      controlnetScale: 0.8,
      canny: true,
      keyframes: [{ prompt: 'a cat', seed: 1 }, { prompt: 'a dog', seed: 2 }],
    });
    for (const outside of ['/etc/hostname', CONTROL_PICTURE]) {
      const refused = await tiny.client.post('/api/renders', { spec: spec(outside), format: 'gif' });
      assert.equal(refused.status, 400, outside);
      assert.match(refused.json.error.message, /controlImage: expected the id of a picture uploaded to this studio/);
    }
    const { job, writtenSpec: written } = await renderGif(tiny.client, spec(uploaded.json.id));
    assert.equal(job.result.frames, 3);
    assert.match(written, new RegExp(`controlImage: .*/files/${uploaded.json.id}`));
    assert.match(written, /canny: true/);
  });

  test('in the page: the ControlNet card takes a control picture and shows its Canny map; a keyframe takes its own', async () => {
    const browser = await launchStudioChromium();
    try {
      const { page, errors } = await openStudioPage(browser, tiny.studio.url);
      const card = page.getByRole('region', { name: 'ControlNet' });
      assert.ok(await card.isVisible(), 'offered for a model with unet_controlnet/');
      await card.getByLabel('ControlNet folder or Hub id').fill(CONTROLNET);
      await card.getByLabel('ControlNet folder or Hub id').press('Tab');
      const [chooser] = await Promise.all([page.waitForEvent('filechooser'), card.getByRole('button', { name: 'Pick a control picture' }).click()]);
      await chooser.setFiles(CONTROL_PICTURE);
      await card.getByRole('img', { name: 'Control picture' }).waitFor({ timeout: 20_000 });
      await card.getByLabel(/Canny/).check();
      const map = card.getByRole('img', { name: 'Canny map of the control picture' });
      await map.waitFor({ timeout: 20_000 });
      await page.waitForFunction(() => (document.querySelector('img[alt="Canny map of the control picture"]') as HTMLImageElement | null)?.naturalWidth! > 0, undefined, { timeout: 20_000 });
      const settings = await page.evaluate(() => JSON.parse(localStorage.getItem('latentblend-studio-draft-v1')!).settings);
      assert.equal(settings.controlnet, CONTROLNET);
      assert.match(settings.controlImage, /^picture-[0-9a-f]{24}\.png$/);
      assert.equal(settings.canny, true);
      mkdirSync(ARTIFACTS, { recursive: true });
      await card.screenshot({ path: join(ARTIFACTS, 'controlnet-card.png') });
      // A keyframe (a picked picture) gets a control picture of its own on its card.
      const [keyframeChooser] = await Promise.all([page.waitForEvent('filechooser'), page.getByRole('button', { name: 'Pick a picture' }).click()]);
      await keyframeChooser.setFiles(CONTROL_PICTURE);
      const keyframe = page.getByRole('article', { name: 'Keyframe 1' });
      await keyframe.waitFor({ timeout: 20_000 });
      const [ownChooser] = await Promise.all([page.waitForEvent('filechooser'), keyframe.getByRole('button', { name: 'Pick a control picture for keyframe 1' }).click()]);
      await ownChooser.setFiles(CONTROL_PICTURE);
      await page.getByRole('article', { name: 'Keyframe 1' }).getByRole('img', { name: 'Control picture of keyframe 1' }).waitFor({ timeout: 20_000 });
      const draft = await page.evaluate(() => JSON.parse(localStorage.getItem('latentblend-studio-draft-v1')!));
      assert.match(draft.keyframes[0].controlImage, /^picture-[0-9a-f]{24}\.png$/);
      assert.equal(draft.keyframes[0].picture, draft.keyframes[0].controlImage, 'the same picture, stored once');
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
    }
  });

  test('a model without the residual UNet refuses ControlNet specs before anything is queued', () => {
    const session = join(tiny.workDir, 'sessions', 'x');
    const request = parseRenderRequest({
      spec: { controlnet: CONTROLNET, controlImage: 'c.png', keyframes: [{ prompt: 'a', seed: 1 }, { prompt: 'b', seed: 2 }] },
    });
    const resolved = { ...request, spec: { ...request.spec, controlImage: join(session, 'files', 'picture-0123456789abcdef01234567.png') } };
    const model = { source: 'turbo', pipeline: { defaults: { preset: 'turbo' }, folder: { dir: modelDir('tiny-sd-turbo') } } } as unknown as StudioModel;
    assert.throws(() => checkRenderRequest(model, resolved, session), /controlnet: this studio's model turbo has no unet_controlnet\/ export/);
  });
});

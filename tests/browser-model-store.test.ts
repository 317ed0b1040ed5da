/**
 * The browser engine's model store, run in Node with a fake fetch: Hub listings (pages,
 * subfolders), which files are fetched up front, fp16 preference, external-data shards, progress
 * and the errors for bad listings and too-large files.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RemoteFileStore, listHubRepo, listSiteFolder } from '../src/browser/model-store.ts';
import { LatentBlendError } from '../src/errors.ts';

const ONNX = Uint8Array.from([0x08, 0x07, 0x12, 0x00]);

function fakeFetch(routes: Record<string, { body: string | Uint8Array; headers?: Record<string, string> }>, log: string[] = []): typeof fetch {
  return (async (input: string | URL | Request) => {
    const url = String(input);
    log.push(url);
    const route = routes[url];
    if (route === undefined) return new Response('not found', { status: 404 });
    return new Response(route.body as BodyInit, { headers: route.headers ?? {} });
  }) as typeof fetch;
}

test('listHubRepo follows the Link header and narrows to a subfolder', async () => {
  const hub = 'https://hub.test';
  const first = `${hub}/api/models/o/m/tree/main?recursive=true`;
  const second = `${hub}/api/models/o/m/tree/main?recursive=true&cursor=2`;
  const fetcher = fakeFetch({
    [first]: {
      body: JSON.stringify([{ type: 'directory', path: 'onnx' }, { type: 'file', path: 'README.md', size: 5 }, { type: 'file', path: 'onnx/model_index.json', size: 10 }]),
      headers: { link: `<${second}>; rel="next"` },
    },
    [second]: { body: JSON.stringify([{ type: 'file', path: 'onnx/unet/model.onnx', size: 99 }]) },
  });
  const folder = await listHubRepo('o/m', { hubUrl: hub, subfolder: 'onnx', fetch: fetcher });
  assert.equal(folder.base, `${hub}/o/m/resolve/main/onnx`);
  assert.deepEqual(folder.entries, [{ path: 'model_index.json', size: 10 }, { path: 'unet/model.onnx', size: 99 }]);
  await assert.rejects(listHubRepo('not a repo', { fetch: fetcher }), /expected a Hub repository id/);
});

test('a store fetches the small text files up front and prefers fp16 with its data shards', async () => {
  const base = 'http://site.test/m';
  const listing = [
    'model_index.json',
    'README.json',
    'unet/config.json',
    'unet/model.onnx',
    'unet/model_fp16.onnx',
    'unet/model_fp16.onnx_data',
    'unet/model_fp16.onnx_data_1',
    'unet/model.onnx_data',
    'vae_decoder/model.onnx',
    'vae_decoder/model.fp16.onnx',
    'vae_decoder/model.fp16.onnx_data',
    'tokenizer/vocab.json',
    'tokenizer/merges.txt',
    'extra/big.json',
  ].map((path) => ({ type: 'file', path, size: 4 }));
  const routes: Record<string, { body: string | Uint8Array }> = { [`${base}/files.json`]: { body: JSON.stringify(listing) } };
  for (const { path } of listing) routes[`${base}/${path}`] = { body: path.endsWith('.onnx') ? ONNX : path.includes('_data') ? Uint8Array.from([1, 2, 3, 4]) : `{"file":"${path}"}` };
  const log: string[] = [];
  const progress: string[] = [];
  const store = new RemoteFileStore({ fetch: fakeFetch(routes, log), cacheName: null, onProgress: (event) => event.done && progress.push(`${event.role}:${event.loaded}/${event.total}`) });
  await store.addFolder(await listSiteFolder(`${base}/`, fakeFetch(routes)));
  const fetched = log.map((url) => url.slice(base.length + 1)).sort();
  assert.deepEqual(fetched, ['model_index.json', 'tokenizer/merges.txt', 'tokenizer/vocab.json', 'unet/config.json']);
  assert.equal(store.readText(store.join(base, 'unet', 'config.json')), '{"file":"unet/config.json"}');
  assert.throws(() => store.readText(`${base}/extra/big.json`), LatentBlendError);
  assert.ok(store.isFolder(`${base}/unet`) && store.isFolder(base) && !store.isFolder(`${base}/vae`));
  assert.ok(store.isFile(`${base}/unet/model.onnx`) && !store.isFile(`${base}/unet`));

  log.length = 0;
  const bytes = await store.loadModel(`${base}/unet/model.onnx`, 'UNet');
  assert.deepEqual(log.map((url) => url.slice(base.length + 1)), ['unet/model_fp16.onnx', 'unet/model_fp16.onnx_data', 'unet/model_fp16.onnx_data_1']);
  assert.deepEqual(bytes.externalData.map((file) => file.path), ['model_fp16.onnx_data', 'model_fp16.onnx_data_1']);
  assert.deepEqual([...bytes.model], [...ONNX]);
  assert.ok(progress.includes('UNet:4/4'));

  const vae = await store.loadModel(`${base}/vae_decoder/model.onnx`, 'VAE decoder');
  assert.deepEqual(vae.externalData.map((file) => file.path), ['model.fp16.onnx_data'], "diffusers' variant name model.fp16.onnx");

  const plain = new RemoteFileStore({ fetch: fakeFetch(routes), cacheName: null, preferFp16: false });
  await plain.addFolder(await listSiteFolder(base, fakeFetch(routes)));
  assert.deepEqual((await plain.loadModel(`${base}/unet/model.onnx`, 'UNet')).externalData.map((file) => file.path), ['model.onnx_data']);
});

test('not an ONNX file, a missing file list and a file over 2 GiB are clear errors', async () => {
  const base = 'http://site.test/m';
  const routes = {
    [`${base}/files.json`]: { body: JSON.stringify([{ path: 'unet/model.onnx', size: 10 }, { path: 'vae_decoder/model.onnx', size: 10 }]) },
    [`${base}/unet/model.onnx`]: { body: 'version https://git-lfs.github.com/spec/v1' },
    [`${base}/vae_decoder/model.onnx`]: { body: ONNX, headers: { 'content-length': String(3 * 2 ** 30) } },
  };
  const store = new RemoteFileStore({ fetch: fakeFetch(routes), cacheName: null });
  await store.addFolder(await listSiteFolder(base, fakeFetch(routes)));
  await assert.rejects(store.loadModel(`${base}/unet/model.onnx`, 'UNet'), /Git LFS pointer/);
  await assert.rejects(store.loadModel(`${base}/vae_decoder/model.onnx`, 'VAE decoder'), /3\.0 GiB.*shards/);
  await assert.rejects(store.loadModel(`${base}/text_encoder/model.onnx`, 'text encoder'), /Missing/);
  await assert.rejects(listSiteFolder('http://site.test/none', fakeFetch(routes)), /HTTP 404/);
});

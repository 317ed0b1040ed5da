/**
 * The studio's film specs use the current key names (issue #8): the page's draft becomes a spec
 * with maxBranches/timeBudget, specs and drafts with the former names are still read, and a
 * render request with a former name carries the deprecation warning. Also picture keyframes of
 * the draft (issue #9). No model, no browser.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fromSpec, toSpec, type Draft } from '../src/studio/web/state.ts';
import { parseRenderRequest } from '../src/studio/requests.ts';

const keyframes = [
  { id: 'a', prompt: 'a cat', seed: 1 },
  { id: 'b', prompt: '', seed: 2, picture: 'picture-0123456789abcdef01234567.png', fit: 'contain' as const },
];

test('the draft becomes a spec with maxBranches or timeBudget, never the former names', () => {
  const branches: Draft = { keyframes, settings: { budgetMode: 'branches', maxBranches: 7, timeBudget: 3 } };
  const spec = toSpec(branches);
  assert.equal(spec.maxBranches, 7);
  assert.equal(spec.timeBudget, undefined, 'only the chosen way of giving the compute');
  assert.ok(!('branchesPerTransition' in spec) && !('timeBudgetPerTransition' in spec));
  const time = toSpec({ keyframes, settings: { budgetMode: 'time', maxBranches: 7, timeBudget: 3 } });
  assert.deepEqual([time.maxBranches, time.timeBudget], [undefined, 3]);
  // A picture keyframe names its picture by id and has no prompt when it was given none.
  assert.deepEqual(spec.keyframes[1], { image: 'picture-0123456789abcdef01234567.png', seed: 2, fit: 'contain' });
  // The server reads that spec without warnings.
  assert.equal(parseRenderRequest({ spec }).warnings, undefined);
});

test('specs with the former names are read into the current settings', () => {
  const old = fromSpec({ branchesPerTransition: 9, keyframes: [{ prompt: 'x', seed: 1 }, { prompt: 'y', seed: 2 }] });
  assert.deepEqual([old.settings.budgetMode, old.settings.maxBranches], ['branches', 9]);
  const oldTime = fromSpec({ timeBudgetPerTransition: 2.5, keyframes: [{ prompt: 'x', seed: 1 }, { prompt: 'y', seed: 2 }] });
  assert.deepEqual([oldTime.settings.budgetMode, oldTime.settings.timeBudget], ['time', 2.5]);
  // A parsed spec names its pictures by path: the draft keeps the id.
  const pictures = fromSpec({ keyframes: [{ image: '/work/sessions/s/files/picture-0123456789abcdef01234567.png', seed: 1 }, { prompt: 'y', seed: 2 }] });
  assert.equal(pictures.keyframes[0]!.picture, 'picture-0123456789abcdef01234567.png');
  assert.equal(pictures.keyframes[0]!.prompt, '');
});

test('a render request with a former name is accepted with the deprecation warning', () => {
  const request = parseRenderRequest({ spec: { branchesPerTransition: 4, keyframes: [{ prompt: 'x', seed: 1 }, { prompt: 'y', seed: 2 }] } });
  assert.equal(request.spec.maxBranches, 4);
  assert.equal(request.warnings?.length, 1);
  assert.match(request.warnings![0]!, /"branchesPerTransition" is deprecated; call it "maxBranches"/);
});

test('ControlNet settings go into the spec only with a control picture for every keyframe (issue #13)', () => {
  const id = (digit: string) => `picture-${digit.repeat(24)}.png`;
  const own = toSpec({
    keyframes: [
      { id: 'a', prompt: 'a cat', seed: 1, controlImage: id('1') },
      { id: 'b', prompt: 'a dog', seed: 2, controlImage: id('2') },
    ],
    settings: { budgetMode: 'branches', controlnet: ' models/cn ', canny: true },
  });
  assert.equal(own.controlnet, 'models/cn');
  assert.equal(own.controlImage, undefined);
  assert.deepEqual(own.keyframes.map((keyframe) => keyframe.controlImage), [id('1'), id('2')]);
  assert.equal(own.canny, true);
  assert.equal(parseRenderRequest({ spec: own }).spec.controlnet, 'models/cn', 'a valid film spec');
  // One keyframe without a picture and no film-wide one: no ControlNet keys at all (not a half spec).
  const partial = toSpec({
    keyframes: [{ id: 'a', prompt: 'a cat', seed: 1, controlImage: id('1') }, { id: 'b', prompt: 'a dog', seed: 2 }],
    settings: { budgetMode: 'branches', controlnet: 'models/cn' },
  });
  assert.equal(partial.controlnet, undefined);
  assert.ok(partial.keyframes.every((keyframe) => keyframe.controlImage === undefined));
  // Read back: the ids, and the film-wide settings.
  const draft = fromSpec({ ...own, controlImage: `/x/files/${id('3')}` });
  assert.deepEqual([draft.settings.controlnet, draft.settings.controlImage, draft.settings.canny], ['models/cn', id('3'), true]);
  assert.equal(draft.keyframes[1]!.controlImage, id('2'));
});

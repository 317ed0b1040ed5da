/** Session options per model role and provider (issue #12's measurements). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { optimizationLevel, sessionOptionsFor } from '../src/runtime/session-options.ts';

test('on the CPU the UNet is created at extended, the VAE decoder at all', () => {
  // The UNet's session takes 4x longer to create at `all` with no per-call gain; the decoder is 13% faster per decode at `all`.
  assert.equal(optimizationLevel('UNet', 'cpu'), 'extended');
  assert.equal(optimizationLevel('VAE decoder', 'cpu'), 'all');
  for (const role of ['text encoder', 'text encoder 2', 'VAE encoder']) assert.equal(optimizationLevel(role, 'cpu'), 'extended', role);
});

test('GPU providers get extended for every tuned role (layout optimisations are CPU-only)', () => {
  for (const device of ['cuda', 'tensorrt', 'coreml', 'dml', 'webgpu'] as const) {
    for (const role of ['UNet', 'VAE decoder', 'VAE encoder', 'text encoder', 'text encoder 2']) {
      assert.equal(optimizationLevel(role, device), 'extended', `${role} on ${device}`);
    }
  }
});

test('roles that were not measured keep level all; options name the provider and are fresh objects', () => {
  assert.equal(optimizationLevel('LPIPS model', 'cpu'), 'all');
  const options = sessionOptionsFor('UNet', 'cuda');
  assert.deepEqual(options, { executionProviders: ['cuda'], graphOptimizationLevel: 'extended', logSeverityLevel: 3 });
  assert.notEqual(sessionOptionsFor('UNet', 'cuda'), options);
});

import { describe, expect, it } from 'vitest';
import { checkSchemaCompatibility } from '../lib/registry/core.js';
import { latestSchemaFiles, readSchemaFiles } from './catalog.js';
import { eventType } from './codec.js';

/**
 * Schema evolution rules for the public event schemas: the latest version of every event
 * must read data written with every committed earlier version (BACKWARD_TRANSITIVE, checked
 * with the registry core's checker), so consumers on the latest schema read all history.
 */

const files = readSchemaFiles();

describe('event schema evolution', () => {
  describe.each(latestSchemaFiles(files).map((f) => [f.event, f] as const))('%s', (event, latest) => {
    it(`v${latest.version} is BACKWARD compatible with every earlier version`, () => {
      const earlier = files
        .filter((f) => f.event === event && f.version < latest.version)
        .map((f) => ({ label: `${event} v${f.version}`, type: eventType(f.text) }));
      const result = checkSchemaCompatibility(eventType(latest.text), earlier, 'BACKWARD_TRANSITIVE');
      expect(result.messages).toEqual([]);
      expect(result.compatible).toBe(true);
    });
  });

  it('the checker rejects a new field without a default, and names it', () => {
    const v1 = latestSchemaFiles(files).find((f) => f.event === 'InferenceRequested')!;
    const v2 = { ...v1.json, fields: [...v1.json.fields, { name: 'budgetTokens', type: 'long', doc: 'added without a default' }] };
    const result = checkSchemaCompatibility(eventType(v2), [{ label: 'InferenceRequested v1', type: eventType(v1.text) }], 'BACKWARD');
    expect(result.compatible).toBe(false);
    expect(result.messages).toEqual([expect.stringMatching(/InferenceRequested v1.*switchyard\.events\.InferenceRequested\.budgetTokens has no default/)]);
  });

  it('the checker rejects an enum symbol removed from a reader with no default symbol', () => {
    const v1 = latestSchemaFiles(files).find((f) => f.event === 'RequestRejected')!;
    const narrowed = JSON.parse(v1.text.replace(',"default":"NORMAL"},"default":"NORMAL"', '},"default":"NORMAL"').replace('"LOW","BACKGROUND"', '"LOW"'));
    const result = checkSchemaCompatibility(eventType(narrowed), [{ label: 'RequestRejected v1', type: eventType(v1.text) }], 'BACKWARD');
    expect(result.compatible).toBe(false);
    expect(result.messages[0]).toMatch(/Priority.*BACKGROUND/);
  });
});

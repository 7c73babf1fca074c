import { isStorageError, normalizePrefix, tenantKey, validateKey } from './index.js';

const code = (fn: () => unknown): string | undefined => {
  try {
    fn();
    return undefined;
  } catch (e) {
    return isStorageError(e) ? e.code : 'not a StorageError';
  }
};

describe('keys', () => {
  test('tenantKey builds tenants/<id>/... and lets parts carry folders', () => {
    expect(tenantKey('t_1', 'personalizations', 'p1/images/0.png')).toBe('tenants/t_1/personalizations/p1/images/0.png');
  });

  test.each([
    ['..', 'x'],
    ['t1', '../other/x'],
    ['t1', '/abs'],
    ['t1', 'a//b'],
    ['t1', 'a/b/'],
    ['t/2', 'x'],
    ['', 'x'],
    ['t1', 'sp ace'],
    ['t1', 'é'],
    ['t1', '.hidden'],
    ['t1', 'a\\b'],
    ['t1', 'a\u0000b'],
  ])('tenantKey(%j, %j) is refused with BAD_KEY', (tenant, part) => {
    expect(code(() => tenantKey(tenant, part))).toBe('BAD_KEY');
  });

  test('tenantKey needs a part after the tenant', () => {
    expect(code(() => tenantKey('t1'))).toBe('BAD_KEY');
  });

  test('validateKey caps the length at S3’s 1024 bytes', () => {
    expect(code(() => validateKey('a'.repeat(1024)))).toBeUndefined();
    expect(code(() => validateKey('a'.repeat(1025)))).toBe('BAD_KEY');
  });

  test('prefixes are folders: normalized to end with one slash, empty for everything', () => {
    expect(normalizePrefix('runs/1')).toBe('runs/1/');
    expect(normalizePrefix('runs/1/')).toBe('runs/1/');
    expect(normalizePrefix('')).toBe('');
    expect(code(() => normalizePrefix('runs//1'))).toBe('BAD_KEY');
    expect(code(() => normalizePrefix('../runs'))).toBe('BAD_KEY');
  });
});

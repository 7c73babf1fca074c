import { CodedError, errorGuard, isCodedError, type ErrorCodes } from './coded-error.js';

const PARSE_CODES = { BAD_SYNTAX: { permanent: true }, TIMEOUT: { permanent: false } } as const satisfies ErrorCodes;
class ParseError extends CodedError<keyof typeof PARSE_CODES> {
  static override readonly codes = PARSE_CODES;
}
const FETCH_CODES = { BAD_SYNTAX: { permanent: false } } as const satisfies ErrorCodes;
class FetchError extends CodedError<keyof typeof FETCH_CODES> {
  static override readonly codes = FETCH_CODES;
}

test("permanent comes from the throwing class's own table, not from the code alone", () => {
  expect(new ParseError('BAD_SYNTAX', 'x').permanent).toBe(true);
  expect(new ParseError('TIMEOUT', 'x').permanent).toBe(false);
  expect(new FetchError('BAD_SYNTAX', 'x').permanent).toBe(false);
});

test('a coded error keeps its class name, code, message and cause, and stays an Error', () => {
  const cause = new Error('root');
  const e = new ParseError('BAD_SYNTAX', 'line 3: unexpected "}"', { cause });
  expect(e).toBeInstanceOf(Error);
  expect(e).toMatchObject({ name: 'ParseError', code: 'BAD_SYNTAX', message: 'line 3: unexpected "}"', cause });
  expect(String(e)).toBe('ParseError: line 3: unexpected "}"');
  expect(isCodedError(e, 'BAD_SYNTAX')).toBe(true);
  expect(isCodedError(e, 'TIMEOUT')).toBe(false);
  expect(isCodedError(Object.assign(new Error('x'), { code: 'BAD_SYNTAX' }))).toBe(false);
});

test('a code missing from the table (only reachable through a cast) counts as retryable', () => {
  expect(new ParseError('NOT_DECLARED' as 'TIMEOUT', 'x').permanent).toBe(false);
});

test('permanent is not an own property: logged and serialized errors keep their shape', () => {
  expect(Object.keys(new ParseError('BAD_SYNTAX', 'x')).sort()).toEqual(['code', 'name']);
});

test("errorGuard tells a class's errors (and one of its codes) from another class's with the same code", () => {
  const isParseError = errorGuard(ParseError);
  expect(isParseError(new ParseError('BAD_SYNTAX', 'x'))).toBe(true);
  expect(isParseError(new ParseError('BAD_SYNTAX', 'x'), 'BAD_SYNTAX')).toBe(true);
  expect(isParseError(new ParseError('TIMEOUT', 'x'), 'BAD_SYNTAX')).toBe(false);
  expect(isParseError(new FetchError('BAD_SYNTAX', 'x'))).toBe(false);
  expect(isParseError(undefined)).toBe(false);
});

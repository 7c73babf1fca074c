import { describeRange, numberOption, parseNumber } from './numbers.js';

describe('parseNumber', () => {
  it('reads decimal numbers and exponents, with surrounding spaces', () => {
    expect(parseNumber('12')).toBe(12);
    expect(parseNumber(' -0.5 ')).toBe(-0.5);
    expect(parseNumber('5e-4')).toBe(0.0005);
    expect(parseNumber('.25')).toBe(0.25);
    expect(parseNumber('3.')).toBe(3);
  });

  it.each(['', '   ', '12abc', '0x10', '0b11', 'Infinity', 'NaN', '1,5', '--1', '1e', 'e3'])('refuses %j, which Number() or parseInt() would read', (v) => {
    expect(() => parseNumber(v)).toThrow('expected a number');
  });

  it('refuses a missing value', () => {
    expect(() => parseNumber(undefined, { integer: true })).toThrow('expected an integer');
  });

  it('keeps to the range, min included unless aboveMin', () => {
    expect(parseNumber('0', { min: 0 })).toBe(0);
    expect(() => parseNumber('-1', { min: 0 })).toThrow('expected a number of at least 0');
    expect(() => parseNumber('0', { min: 0, aboveMin: true, max: 1 })).toThrow('expected a number above 0 and at most 1');
    expect(parseNumber('1', { min: 0, aboveMin: true, max: 1 })).toBe(1);
    expect(() => parseNumber('1.0001', { min: 0, max: 1 })).toThrow('expected a number from 0 to 1');
  });

  it('asks integers to be whole and safe', () => {
    expect(parseNumber('7', { integer: true, min: 1 })).toBe(7);
    expect(parseNumber('1e3', { integer: true })).toBe(1000);
    expect(() => parseNumber('2.5', { integer: true, min: 1 })).toThrow('expected an integer of at least 1');
    expect(() => parseNumber('9007199254740993', { integer: true })).toThrow('expected an integer');
  });
});

describe('describeRange', () => {
  it('says every shape of range in words', () => {
    expect(describeRange({})).toBe('a number');
    expect(describeRange({ integer: true, max: 10 })).toBe('an integer of at most 10');
    expect(describeRange({ min: 0, aboveMin: true })).toBe('a number above 0');
    expect(describeRange({ integer: true, min: 1, max: 16 })).toBe('an integer from 1 to 16');
  });
});

describe('numberOption', () => {
  it("names the option and the value in a script's error", () => {
    expect(numberOption('steps', '300', { integer: true, min: 0 })).toBe(300);
    expect(() => numberOption('batch', '0', { integer: true, min: 1 })).toThrow('--batch must be an integer of at least 1, got "0"');
    expect(() => numberOption('lr', undefined, { min: 0, aboveMin: true })).toThrow('--lr must be a number above 0, got nothing');
  });
});

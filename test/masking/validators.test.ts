import assert from 'node:assert/strict';
import { test } from 'node:test';
import { aadhaarValid, cardIinValid, cnRicValid, codiceFiscaleValid, cpfValid, dniValid, hetuValid, ibanMod97, ibanValid, luhn, luhnAt, nanpValid, nhsValid, ninoValid, nricValid, panValid, rrnValid, sinValid, ssnValid, validatorFor, verhoeff } from '../../src/masking/validators.js';

test('luhn accepts valid numbers and rejects a one-digit change', () => {
  for (const n of ['4111111111111111', '378282246310005', '6011111111111117', '5555555555554444', '79927398713']) assert.equal(luhn(n), true, n);
  for (const n of ['4111111111111112', '378282246310006', '79927398710']) assert.equal(luhn(n), false, n);
  assert.equal(luhnAt('x 4111-1111-1111-1111 y', 2, 21), true, 'separators are skipped');
});

test('card IIN ranges and lengths', () => {
  assert.equal(cardIinValid(411111, 16), true);
  assert.equal(cardIinValid(411111, 13), false, '13-digit Visa is not accepted (EAN-13 collisions)');
  assert.equal(cardIinValid(378282, 15), true);
  assert.equal(cardIinValid(378282, 16), false);
  assert.equal(cardIinValid(222100, 16), true);
  assert.equal(cardIinValid(272099, 16), true);
  assert.equal(cardIinValid(272100, 16), false);
  assert.equal(cardIinValid(601111, 16), true);
  assert.equal(cardIinValid(353011, 16), true);
  assert.equal(cardIinValid(690000, 13), false, 'Maestro 13 digits collide with EAN-13');
  for (const p of [100000, 700000, 800000, 900000, 0]) assert.equal(cardIinValid(p, 16), false, String(p));
});

test('SSN: area 000/666/9xx, group 00 and serial 0000 are invalid', () => {
  assert.equal(ssnValid(123, 45, 6789), true);
  assert.equal(ssnValid(0, 45, 6789), false);
  assert.equal(ssnValid(666, 45, 6789), false);
  assert.equal(ssnValid(900, 45, 6789), false);
  assert.equal(ssnValid(999, 45, 6789), false);
  assert.equal(ssnValid(123, 0, 6789), false);
  assert.equal(ssnValid(123, 45, 0), false);
});

test('IBAN: mod-97 and per-country length', () => {
  assert.equal(ibanValid('DE89 3704 0044 0532 0130 00'), true);
  assert.equal(ibanValid('GB82WEST12345698765432'), true);
  assert.equal(ibanValid('GB82 WEST 1234 5698 7654 32'), true);
  assert.equal(ibanValid('DE89370400440532013001'), false, 'bad checksum');
  assert.equal(ibanValid('DE8937040044053201300'), false, 'wrong length for DE');
  assert.equal(ibanValid('ZZ89370400440532013000'), false, 'unknown country');
  assert.equal(ibanMod97('GB82WEST12345698765432'), true);
});

test('NANP area and exchange start with 2-9', () => {
  assert.equal(nanpValid(4, 5), true);
  assert.equal(nanpValid(1, 5), false);
  assert.equal(nanpValid(4, 0), false);
});

test('validators named in config', () => {
  assert.equal(validatorFor('luhn')('4111-1111-1111-1111'), true);
  assert.equal(validatorFor('luhn')('4111-1111-1111-1112'), false);
  assert.equal(validatorFor('iban')('DE89370400440532013000'), true);
  assert.equal(validatorFor('mod97')('DE89370400440532013000'), true);
  assert.equal(validatorFor('ssn')('123-45-6789'), true);
  assert.equal(validatorFor('ssn')('666-45-6789'), false);
  assert.equal(validatorFor('verhoeff')('2345 6789 0124'), true);
  assert.equal(validatorFor('verhoeff')('2345 6789 0123'), false);
  assert.equal(validatorFor('none')('anything'), true);
});

test('national identifier checks', () => {
  // Verhoeff's published example: 236 → check digit 3.
  assert.equal(verhoeff('2363'), true);
  assert.equal(verhoeff('2364'), false);
  assert.equal(aadhaarValid('234567890124'), true);
  assert.equal(aadhaarValid('134567890124'), false, 'first digit 0 or 1 is never issued');
  assert.equal(cpfValid('52998224725'), true);
  assert.equal(cpfValid('52998224724'), false);
  assert.equal(cpfValid('11111111111'), false, 'one repeated digit passes the sums but is not a CPF');
  assert.equal(dniValid('12345678', 'Z'), true);
  assert.equal(dniValid('X1234567', 'L'), true);
  assert.equal(dniValid('12345678', 'A'), false);
  assert.equal(ninoValid('A', 'B', 'C'), true);
  assert.equal(ninoValid('Q', 'Q', 'C'), false);
  assert.equal(ninoValid('G', 'B', 'A'), false, 'GB is never issued');
  assert.equal(ninoValid('A', 'B', 'E'), false);
  assert.equal(sinValid('130692544'), true);
  assert.equal(sinValid('830692547'), false, 'Luhn-valid, but 8 is never issued');
});

test('more national identifiers: each issuer\'s check, and a one-character change fails it', () => {
  const cases: [(id: string) => boolean, string, string[]][] = [
    [codiceFiscaleValid, 'RSSMRA85M01H501Q', ['RSSMRA85M01H501R', 'RSSMRA85Z01H501Q', 'RSSMRA85M32H501Q', 'RSSMRA85M01H501']],
    [codiceFiscaleValid, 'BNCLRA92D45F205D', ['BNCLRA92D45F205E']],
    [nricValid, 'S1234567D', ['S1234567A', 'X1234567D', 'S123456D']],
    [nricValid, 'T1234567J', ['T1234567D']],
    [nricValid, 'F1234567N', ['G1234567N']],
    [hetuValid, '131052-308T', ['131052-308U', '311352-308T', '131052Z308T']],
    [hetuValid, '010203A1230', ['010203A1231', '300203A1230']],
    [rrnValid, '8503141023451', ['8503141023452', '8513141023451', '8503149023451']],
    [cnRicValid, '11010519491231002X', ['110105194912310021', '11010519491331002X', '01010519491231002X']],
    [cnRicValid, '44030419900307123X', ['440304199003071230']],
    [nhsValid, '4010232137', ['4010232138', '1010232137', '401023213']],
    [nhsValid, '9434765919', ['9434765918']],
    [panValid, 'ABCPE1234F', ['ABCXE1234F', 'ABCPE12345', 'abcpe1234f']],
  ];
  for (const [valid, good, bad] of cases) {
    assert.equal(valid(good), true, good);
    for (const b of bad) assert.equal(valid(b), false, b);
  }
});

/**
 * Checksums and structural checks that turn a pattern hit into a detection. Hand-written rather
 * than taken from `validator`: they read straight from the scanned string by index (no substring
 * per candidate), which is what keeps the per-cell cost low on the DataRow path.
 */

import { createHash } from 'node:crypto';

const ZERO = 48; // '0'

function isDigitCode(c: number): boolean {
  return c >= 48 && c <= 57;
}

/** Luhn (ISO/IEC 7812-1 annex B) over the digits of `s[start, end)`, skipping separators. */
export function luhnAt(s: string, start: number, end: number): boolean {
  let sum = 0;
  let double = false;
  let n = 0;
  for (let i = end - 1; i >= start; i--) {
    const c = s.charCodeAt(i);
    if (!isDigitCode(c)) continue;
    let d = c - ZERO;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
    n++;
  }
  return n > 0 && sum % 10 === 0;
}

export function luhn(digits: string): boolean {
  return luhnAt(digits, 0, digits.length);
}

/**
 * Issuer identification number ranges (ISO/IEC 7812, networks' published BIN tables) with the
 * lengths each network issues. A Luhn-valid 16-digit id starting with 1, 7, 8, 9 or 0 is not a card.
 */
export function cardIinValid(first6: number, length: number): boolean {
  const d1 = Math.floor(first6 / 100000);
  const d2 = Math.floor(first6 / 10000);
  const d3 = Math.floor(first6 / 1000);
  const d4 = Math.floor(first6 / 100);
  // Visa: 16 or 19. 13-digit Visa numbers are no longer issued, and EAN-13 barcodes starting with 4 are common.
  if (d1 === 4) return length === 16 || length === 19;
  if (d2 >= 51 && d2 <= 55) return length === 16; // Mastercard
  if (d4 >= 2221 && d4 <= 2720) return length === 16; // Mastercard 2-series
  if (d4 >= 2200 && d4 <= 2204) return length >= 16 && length <= 19; // Mir
  if (d2 === 34 || d2 === 37) return length === 15; // American Express
  if ((d3 >= 300 && d3 <= 305) || d2 === 36 || d2 === 38 || d2 === 39) return length >= 14 && length <= 19; // Diners
  if (d4 >= 3528 && d4 <= 3589) return length >= 16 && length <= 19; // JCB
  if (d4 === 6011 || (d3 >= 644 && d3 <= 649) || d2 === 65) return length >= 16 && length <= 19; // Discover
  if (d2 === 62) return length >= 16 && length <= 19; // UnionPay (incl. Discover 622126–622925)
  // Maestro issues 12–19 digits, but 12–15-digit cards are rare and EAN-13 barcodes (prefixes
  // 50–69 are European and Asian GS1 countries) collide with them, so only 16–19 count.
  if (d2 === 50 || (d2 >= 56 && d2 <= 69)) return length >= 16 && length <= 19; // Maestro
  return false;
}

/**
 * SSA rules: area 000, 666 and 900–999 are never issued; group 00 and serial 0000 are invalid.
 * (Randomised issuance since 2011 removed the area/group ordering, so nothing stricter holds.)
 */
export function ssnValid(area: number, group: number, serial: number): boolean {
  if (area === 0 || area === 666 || area >= 900) return false;
  if (group === 0 || serial === 0) return false;
  return true;
}

/** IBAN lengths per country (SWIFT IBAN registry, release 2024). */
export const IBAN_LENGTHS: Readonly<Record<string, number>> = {
  AD: 24, AE: 23, AL: 28, AT: 20, AZ: 28, BA: 20, BE: 16, BG: 22, BH: 22, BI: 27, BR: 29, BY: 28,
  CH: 21, CR: 22, CY: 28, CZ: 24, DE: 22, DJ: 27, DK: 18, DO: 28, EE: 20, EG: 29, ES: 24, FI: 18,
  FK: 18, FO: 18, FR: 27, GB: 22, GE: 22, GI: 23, GL: 18, GR: 27, GT: 28, HR: 21, HU: 28, IE: 22,
  IL: 23, IQ: 23, IS: 26, IT: 27, JO: 30, KW: 30, KZ: 20, LB: 28, LC: 32, LI: 21, LT: 20, LU: 20,
  LV: 21, LY: 25, MC: 27, MD: 24, ME: 22, MK: 19, MN: 20, MR: 27, MT: 31, MU: 30, NI: 28, NL: 18,
  NO: 15, OM: 23, PK: 24, PL: 28, PS: 29, PT: 25, QA: 29, RO: 24, RS: 22, RU: 33, SA: 24, SC: 31,
  SD: 18, SE: 24, SI: 19, SK: 24, SM: 27, SO: 23, ST: 25, SV: 28, TL: 23, TN: 24, TR: 26, UA: 29,
  VA: 22, VG: 24, XK: 20, YE: 30,
};

/** ISO 13616 mod-97 over an IBAN with separators already removed (upper-case letters and digits). */
export function ibanMod97(compact: string): boolean {
  const n = compact.length;
  if (n < 5) return false;
  let rem = 0;
  // Rotate the first four characters to the end; letters count as two digits (A=10 … Z=35).
  for (let k = 0; k < n; k++) {
    const c = compact.charCodeAt((k + 4) % n);
    if (c >= 48 && c <= 57) rem = (rem * 10 + (c - 48)) % 97;
    else if (c >= 65 && c <= 90) rem = (rem * 100 + (c - 55)) % 97;
    else return false;
  }
  return rem === 1;
}

/** Full IBAN check: country length from the registry and mod-97. Accepts spaces. */
export function ibanValid(value: string): boolean {
  const compact = value.replace(/[ ]/g, '').toUpperCase();
  const len = IBAN_LENGTHS[compact.slice(0, 2)];
  return len !== undefined && compact.length === len && ibanMod97(compact);
}

/** North American Numbering Plan: area code and exchange both start with 2–9. */
export function nanpValid(areaFirst: number, exchangeFirst: number): boolean {
  return areaFirst >= 2 && exchangeFirst >= 2;
}

/**
 * UK National Insurance number prefix and suffix (HMRC NIM39110): neither letter D, F, I, Q, U
 * or V, the second not O, none of the never-issued prefixes, suffix A–D.
 */
export function ninoValid(first: string, second: string, suffix: string): boolean {
  if ('DFIQUV'.includes(first) || 'DFIOQUV'.includes(second)) return false;
  if (['BG', 'GB', 'KN', 'NK', 'NT', 'TN', 'ZZ'].includes(first + second)) return false;
  return suffix >= 'A' && suffix <= 'D';
}

/** Canadian Social Insurance Number: 9 digits, Luhn, not starting with 0 or 8 (never issued). */
export function sinValid(digits: string): boolean {
  return digits.length === 9 && digits[0] !== '0' && digits[0] !== '8' && luhn(digits);
}

// Verhoeff's dihedral-group tables.
const VERHOEFF_D = [
  [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 2, 3, 4, 0, 6, 7, 8, 9, 5], [2, 3, 4, 0, 1, 7, 8, 9, 5, 6], [3, 4, 0, 1, 2, 8, 9, 5, 6, 7], [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
  [5, 9, 8, 7, 6, 0, 4, 3, 2, 1], [6, 5, 9, 8, 7, 1, 0, 4, 3, 2], [7, 6, 5, 9, 8, 2, 1, 0, 4, 3], [8, 7, 6, 5, 9, 3, 2, 1, 0, 4], [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
];
const VERHOEFF_P = [
  [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 5, 7, 6, 2, 8, 3, 0, 9, 4], [5, 8, 0, 3, 7, 9, 6, 1, 4, 2], [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
  [9, 4, 5, 3, 1, 2, 6, 8, 7, 0], [4, 2, 8, 6, 5, 7, 3, 9, 0, 1], [2, 7, 9, 3, 8, 0, 6, 4, 1, 5], [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
];

/** Verhoeff checksum over a string of digits (the check digit last). */
export function verhoeff(digits: string): boolean {
  let c = 0;
  for (let i = 0; i < digits.length; i++) {
    const d = digits.charCodeAt(digits.length - 1 - i) - ZERO;
    c = VERHOEFF_D[c]![VERHOEFF_P[i % 8]![d]!]!;
  }
  return c === 0;
}

/** Indian Aadhaar number: 12 digits, the first 2–9, Verhoeff check digit (UIDAI). */
export function aadhaarValid(digits: string): boolean {
  return digits.length === 12 && digits[0]! >= '2' && verhoeff(digits);
}

/** Brazilian CPF: 11 digits, two mod-11 check digits, not one digit repeated (Receita Federal). */
export function cpfValid(digits: string): boolean {
  if (digits.length !== 11 || /^(\d)\1{10}$/.test(digits)) return false;
  const check = (n: number): number => {
    let sum = 0;
    for (let i = 0; i < n; i++) sum += (digits.charCodeAt(i) - ZERO) * (n + 1 - i);
    return ((sum * 10) % 11) % 10;
  };
  return check(9) === digits.charCodeAt(9) - ZERO && check(10) === digits.charCodeAt(10) - ZERO;
}

const DNI_LETTERS = 'TRWAGMYFPDXBNJZSQVHLCKE';

/** Spanish DNI (8 digits) or NIE (X, Y or Z and 7 digits) with its control letter (mod 23). */
export function dniValid(body: string, letter: string): boolean {
  const lead = 'XYZ'.indexOf(body[0] ?? '');
  const digits = lead >= 0 ? `${lead}${body.slice(1)}` : body;
  if (!/^\d{8}$/.test(digits)) return false;
  return DNI_LETTERS[Number(digits) % 23] === letter;
}

/** A calendar date (years 1800–2099), for identifiers that embed a birth date. */
function dateValid(year: number, month: number, day: number): boolean {
  if (month < 1 || month > 12 || day < 1) return false;
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  return day <= [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]!;
}

// Italian codice fiscale: values of the characters in odd positions (1st, 3rd, …), by digit or letter.
const CF_ODD = [1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23];

/**
 * Italian codice fiscale (Agenzia delle Entrate): six letters, year, month letter, day (41–71 for
 * women), municipality, and a check letter over the first fifteen characters.
 */
export function codiceFiscaleValid(cf: string): boolean {
  if (!/^[A-Z]{6}\d{2}[ABCDEHLMPRST]\d{2}[A-Z]\d{3}[A-Z]$/.test(cf)) return false;
  const day = Number(cf.slice(9, 11));
  if (!((day >= 1 && day <= 31) || (day >= 41 && day <= 71))) return false;
  let sum = 0;
  for (let i = 0; i < 15; i++) {
    const c = cf.charCodeAt(i);
    const v = c <= 57 ? c - ZERO : c - 65;
    sum += i % 2 === 0 ? CF_ODD[v]! : v;
  }
  return cf.charCodeAt(15) - 65 === sum % 26;
}

/** Singapore NRIC/FIN (ICA): S, T, F or G, seven digits, check letter (weights 2 7 6 5 4 3 2). */
export function nricValid(id: string): boolean {
  if (!/^[STFG]\d{7}[A-Z]$/.test(id)) return false;
  const w = [2, 7, 6, 5, 4, 3, 2];
  let sum = id[0] === 'T' || id[0] === 'G' ? 4 : 0;
  for (let i = 0; i < 7; i++) sum += (id.charCodeAt(i + 1) - ZERO) * w[i]!;
  const table = id[0] === 'S' || id[0] === 'T' ? 'JZIHGFEDCBA' : 'XWUTRQPNMLK';
  return table[sum % 11] === id[8];
}

const HETU_CENTURIES: Readonly<Record<string, number>> = { '+': 1800, '-': 1900, Y: 1900, X: 1900, W: 1900, V: 1900, U: 1900, A: 2000, B: 2000, C: 2000, D: 2000, E: 2000, F: 2000 };

/** Finnish personal identity code (henkilötunnus): DDMMYY, century sign, NNN, check character (mod 31). */
export function hetuValid(id: string): boolean {
  if (!/^\d{6}[-+ABCDEFUVWXY]\d{3}[0-9A-Y]$/.test(id)) return false;
  const century = HETU_CENTURIES[id[6]!]!;
  if (!dateValid(century + Number(id.slice(4, 6)), Number(id.slice(2, 4)), Number(id.slice(0, 2)))) return false;
  return '0123456789ABCDEFHJKLMNPRSTUVWXY'[Number(id.slice(0, 6) + id.slice(7, 10)) % 31] === id[10];
}

/**
 * Korean resident registration number: YYMMDD, a sex and century digit (1–8), six more digits,
 * the last a mod-11 check (numbers issued before October 2020).
 */
export function rrnValid(digits: string): boolean {
  if (!/^\d{13}$/.test(digits)) return false;
  const g = digits.charCodeAt(6) - ZERO;
  if (g < 1 || g > 8) return false;
  const century = g === 1 || g === 2 || g === 5 || g === 6 ? 1900 : 2000;
  if (!dateValid(century + Number(digits.slice(0, 2)), Number(digits.slice(2, 4)), Number(digits.slice(4, 6)))) return false;
  const w = [2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5];
  let sum = 0;
  for (let i = 0; i < 12; i++) sum += (digits.charCodeAt(i) - ZERO) * w[i]!;
  return (11 - (sum % 11)) % 10 === digits.charCodeAt(12) - ZERO;
}

/**
 * Chinese resident identity card number (GB 11643): six region digits, a birth date YYYYMMDD,
 * three sequence digits and an ISO 7064 MOD 11-2 check character (0–9 or X).
 */
export function cnRicValid(id: string): boolean {
  if (!/^[1-8]\d{16}[\dX]$/.test(id)) return false;
  const year = Number(id.slice(6, 10));
  if (year < 1900 || year > 2099 || !dateValid(year, Number(id.slice(10, 12)), Number(id.slice(12, 14)))) return false;
  const w = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
  let sum = 0;
  for (let i = 0; i < 17; i++) sum += (id.charCodeAt(i) - ZERO) * w[i]!;
  return '10X98765432'[sum % 11] === id[17];
}

/**
 * NHS number (England and Wales; issued ranges start 4, 6 or 7, test numbers 9): ten digits, the last a
 * mod-11 check over the first nine (weights 10 to 2).
 */
export function nhsValid(digits: string): boolean {
  if (!/^[4679]\d{9}$/.test(digits)) return false;
  let sum = 0;
  for (let i = 0; i < 9; i++) sum += (digits.charCodeAt(i) - ZERO) * (10 - i);
  const check = 11 - (sum % 11);
  return check !== 10 && (check === 11 ? 0 : check) === digits.charCodeAt(9) - ZERO;
}

/**
 * US Individual Taxpayer Identification Number (IRS): nine digits `9XX-XX-XXXX` whose middle group
 * is 50–65, 70–88, 90–92 or 94–99 (the ranges the IRS issues; an SSN never starts with 9).
 */
export function itinValid(area: number, group: number): boolean {
  return area >= 900 && area <= 999 && ((group >= 50 && group <= 65) || (group >= 70 && group <= 88) || (group >= 90 && group <= 92) || group >= 94);
}

/** Australian Business Number (ABR): eleven digits; the first less one, weights 10 1 3 5 … 19, sum divisible by 89. */
export function abnValid(digits: string): boolean {
  if (!/^[1-9]\d{10}$/.test(digits)) return false;
  const w = [10, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19];
  let sum = 0;
  for (let i = 0; i < 11; i++) sum += (digits.charCodeAt(i) - ZERO - (i === 0 ? 1 : 0)) * w[i]!;
  return sum % 89 === 0;
}

/** Australian Medicare card number (Services Australia): ten digits, the first 2–6, the ninth a check over the first eight (weights 1 3 7 9 1 3 7 9). */
export function medicareValid(digits: string): boolean {
  if (!/^[2-6]\d{9}$/.test(digits)) return false;
  const w = [1, 3, 7, 9, 1, 3, 7, 9];
  let sum = 0;
  for (let i = 0; i < 8; i++) sum += (digits.charCodeAt(i) - ZERO) * w[i]!;
  return sum % 10 === digits.charCodeAt(8) - ZERO;
}

/**
 * Swedish personnummer or samordningsnummer (Skatteverket): YYMMDD (the day plus 60 for a
 * coordination number), four digits, the last a Luhn check over the ten.
 */
export function personnummerValid(digits: string): boolean {
  if (!/^\d{10}$/.test(digits)) return false;
  let day = Number(digits.slice(4, 6));
  if (day > 60) day -= 60;
  // Any century: the separator (`-` or `+`) says which, not the digits.
  return dateValid(2000, Number(digits.slice(2, 4)), day) && luhn(digits);
}

/** Danish CPR number: DDMMYY, four digits, the whole divisible by 11 with weights 4 3 2 7 6 5 4 3 2 1 (numbers issued before 2007). */
export function cprValid(digits: string): boolean {
  if (!/^\d{10}$/.test(digits) || !dateValid(2000, Number(digits.slice(2, 4)), Number(digits.slice(0, 2)))) return false;
  const w = [4, 3, 2, 7, 6, 5, 4, 3, 2, 1];
  let sum = 0;
  for (let i = 0; i < 10; i++) sum += (digits.charCodeAt(i) - ZERO) * w[i]!;
  return sum % 11 === 0;
}

/**
 * French social security number (NIR, INSEE): sex (1, 2, or 3, 4, 7, 8 for provisional numbers),
 * YY, MM (01–12, or 20 and 30–42, 50–99 where unknown), department, commune, order, and a key of
 * 97 minus the first thirteen digits mod 97. Corsica's 2A/2B are not read.
 */
export function nirValid(digits: string): boolean {
  if (!/^[123478]\d{14}$/.test(digits)) return false;
  const month = Number(digits.slice(3, 5));
  if (month === 0 || (month > 12 && month !== 20 && month < 30) || (month > 42 && month < 50)) return false;
  return 97 - Number(BigInt(digits.slice(0, 13)) % 97n) === Number(digits.slice(13));
}

/**
 * South African identity number (Home Affairs): YYMMDD, four sequence digits, citizenship (0 or
 * 1), 8 or 9, and a Luhn check digit.
 */
export function saIdValid(digits: string): boolean {
  if (!/^\d{6}\d{4}[01][89]\d$/.test(digits)) return false;
  return dateValid(2000, Number(digits.slice(2, 4)), Number(digits.slice(4, 6))) && luhn(digits);
}

/**
 * Mexican CURP (RENAPO): four letters, YYMMDD, sex (H, M or X), a state code, three consonants,
 * a homonym character and a check digit (mod 10 over the values of the first seventeen).
 */
export function curpValid(id: string): boolean {
  if (!/^[A-Z]{4}\d{6}[HMX](?:AS|BC|BS|CC|CL|CM|CS|CH|DF|DG|GT|GR|HG|JC|MC|MN|MS|NT|NL|OC|PL|QT|QR|SP|SL|SR|TC|TS|TL|VZ|YN|ZS|NE)[B-DF-HJ-NP-TV-Z]{3}[0-9A-Z]\d$/.test(id)) return false;
  if (!dateValid(2000, Number(id.slice(6, 8)), Number(id.slice(8, 10)))) return false;
  const alphabet = '0123456789ABCDEFGHIJKLMN\u00d1OPQRSTUVWXYZ';
  let sum = 0;
  for (let i = 0; i < 17; i++) sum += alphabet.indexOf(id[i]!) * (18 - i);
  return (10 - (sum % 10)) % 10 === id.charCodeAt(17) - ZERO;
}

const BASE58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';

/**
 * Base58Check (Bitcoin): the decoded bytes, their last four the first four of the double SHA-256
 * of the rest; the payload without them, or undefined. Inputs are at most 120 characters.
 */
export function base58check(s: string): Uint8Array | undefined {
  if (s.length === 0 || s.length > 120) return undefined;
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    let carry = BASE58.indexOf(s[i]!);
    if (carry < 0) return undefined;
    for (let k = 0; k < bytes.length; k++) {
      carry += bytes[k]! * 58;
      bytes[k] = carry & 0xff;
      carry >>= 8;
    }
    while (carry > 0) {
      bytes.push(carry & 0xff);
      carry >>= 8;
    }
  }
  for (let i = 0; i < s.length && s[i] === '1'; i++) bytes.push(0);
  const out = Uint8Array.from(bytes.reverse());
  if (out.length < 5) return undefined;
  const payload = out.subarray(0, out.length - 4);
  const sum = createHash('sha256').update(createHash('sha256').update(payload).digest()).digest();
  for (let i = 0; i < 4; i++) if (sum[i] !== out[out.length - 4 + i]) return undefined;
  return payload;
}

/**
 * A Bitcoin private key in Wallet Import Format: Base58Check of 0x80 (0xEF on testnet), the
 * 32-byte key and, for a compressed public key, 0x01.
 */
export function wifValid(s: string): boolean {
  if (s.length !== 51 && s.length !== 52) return false;
  const p = base58check(s);
  return p !== undefined && (p[0] === 0x80 || p[0] === 0xef) && (p.length === 33 || (p.length === 34 && p[33] === 0x01));
}

/** A BIP-32 extended private key (`xprv…`, `tprv…`, and BIP-49/84's `yprv`/`zprv`): 78 bytes of Base58Check whose key data starts with 0x00. */
export function extendedPrivateKeyValid(s: string): boolean {
  if (s.length !== 111) return false;
  const p = base58check(s);
  return p !== undefined && p.length === 78 && p[45] === 0x00;
}

/** Indian PAN (Income Tax Department): five letters (the fourth the holder's type), four digits, a letter. */
export function panValid(id: string): boolean {
  return /^[A-Z]{3}[ABCFGHJLPT][A-Z]\d{4}[A-Z]$/.test(id);
}

/** Shannon entropy in bits per character of `s[start, end)`. */
export function entropyAt(s: string, start: number, end: number): number {
  const n = end - start;
  if (n <= 0) return 0;
  const counts = new Map<number, number>();
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    counts.set(c, (counts.get(c) ?? 0) + 1);
  }
  let h = 0;
  for (const k of counts.values()) {
    const p = k / n;
    h -= p * Math.log2(p);
  }
  return h;
}

export type ValidatorName = 'luhn' | 'iban' | 'mod97' | 'ssn' | 'verhoeff' | 'none';
export const VALIDATOR_NAMES: readonly ValidatorName[] = ['luhn', 'iban', 'mod97', 'ssn', 'verhoeff', 'none'];

/** Validators custom detectors may name in config. */
export function validatorFor(name: ValidatorName): (value: string) => boolean {
  switch (name) {
    case 'luhn':
      return (v) => {
        const digits = v.replace(/[^0-9]/g, '');
        return digits.length >= 8 && luhn(digits);
      };
    case 'iban':
      return ibanValid;
    case 'mod97':
      return (v) => ibanMod97(v.replace(/[^0-9A-Za-z]/g, '').toUpperCase());
    case 'ssn':
      return (v) => {
        const d = v.replace(/[^0-9]/g, '');
        return d.length === 9 && ssnValid(Number(d.slice(0, 3)), Number(d.slice(3, 5)), Number(d.slice(5)));
      };
    case 'verhoeff':
      return (v) => {
        const digits = v.replace(/[^0-9]/g, '');
        return digits.length >= 2 && verhoeff(digits);
      };
    case 'none':
      return () => true;
    default: {
      const never: never = name;
      throw new TypeError(`unknown validator ${String(never)}`);
    }
  }
}

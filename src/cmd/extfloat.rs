//! x87 80-bit extended precision ("long double") emulation for INCRBYFLOAT.
//!
//! Redis parses INCRBYFLOAT's operands with `strtold`, adds them in `long double` (a 64-bit mantissa on
//! x86-64) and prints the sum with `%.17Lf`, trailing zeros removed. Doing the same in `f64` gives other
//! text (`5005.6` where Redis says `5005.60000000000000009`), so this module redoes it exactly: decimal
//! parsing with correct rounding, addition rounded to 64 mantissa bits (round half to even), and exact
//! decimal printing. Big-integer arithmetic keeps every step exact before its single rounding.
//! Subnormal long doubles (below 2^-16382) are flushed to zero.

use std::cmp::Ordering;

/// Mantissa bits of an x87 extended value.
const MANTISSA_BITS: usize = 64;
/// Largest binary exponent (of the value's leading bit) before overflow to infinity.
const MAX_EXPONENT: i64 = 16383;
/// Smallest binary exponent (of the leading bit) of a normal value.
const MIN_EXPONENT: i64 = -16382;

/// An unsigned big integer, little-endian 32-bit limbs, no leading zero limbs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Big(Vec<u32>);

impl Big {
    fn from_u64(value: u64) -> Big {
        let mut big = Big(vec![value as u32, (value >> 32) as u32]);
        big.trim();
        big
    }

    fn trim(&mut self) {
        while self.0.last() == Some(&0) {
            self.0.pop();
        }
    }

    fn is_zero(&self) -> bool {
        self.0.is_empty()
    }

    fn bits(&self) -> usize {
        match self.0.last() {
            None => 0,
            Some(top) => self.0.len() * 32 - top.leading_zeros() as usize,
        }
    }

    fn bit(&self, index: usize) -> bool {
        self.0.get(index / 32).is_some_and(|limb| (limb >> (index % 32)) & 1 == 1)
    }

    fn mul_small(&mut self, factor: u32) {
        let mut carry = 0u64;
        for limb in &mut self.0 {
            let product = u64::from(*limb) * u64::from(factor) + carry;
            *limb = product as u32;
            carry = product >> 32;
        }
        if carry > 0 {
            self.0.push(carry as u32);
        }
    }

    fn add_small(&mut self, addend: u32) {
        let mut carry = u64::from(addend);
        for limb in &mut self.0 {
            if carry == 0 {
                break;
            }
            let sum = u64::from(*limb) + carry;
            *limb = sum as u32;
            carry = sum >> 32;
        }
        if carry > 0 {
            self.0.push(carry as u32);
        }
    }

    fn mul_pow10(&mut self, mut exponent: usize) {
        while exponent >= 9 {
            self.mul_small(1_000_000_000);
            exponent -= 9;
        }
        self.mul_small(10u32.pow(exponent as u32));
    }

    fn shl(&self, shift: usize) -> Big {
        let (limbs, bits) = (shift / 32, shift % 32);
        let mut out = vec![0u32; limbs];
        let mut carry = 0u32;
        for &limb in &self.0 {
            if bits == 0 {
                out.push(limb);
            } else {
                out.push((limb << bits) | carry);
                carry = limb >> (32 - bits);
            }
        }
        if carry > 0 {
            out.push(carry);
        }
        let mut big = Big(out);
        big.trim();
        big
    }

    /// `self >> shift`, and whether any bit shifted out was set.
    fn shr(&self, shift: usize) -> (Big, bool) {
        let lost = (0..shift.min(self.bits())).any(|i| self.bit(i));
        let (limbs, bits) = (shift / 32, shift % 32);
        let mut out = Vec::new();
        for i in limbs..self.0.len() {
            let low = self.0[i] >> bits;
            let high = if bits == 0 { 0 } else { self.0.get(i + 1).map_or(0, |h| h << (32 - bits)) };
            out.push(low | high);
        }
        let mut big = Big(out);
        big.trim();
        (big, lost)
    }

    fn cmp(&self, other: &Big) -> Ordering {
        self.0.len().cmp(&other.0.len()).then_with(|| self.0.iter().rev().cmp(other.0.iter().rev()))
    }

    /// `self - other`, requires `self >= other`.
    fn sub(&self, other: &Big) -> Big {
        let mut out = Vec::with_capacity(self.0.len());
        let mut borrow = 0i64;
        for (i, &limb) in self.0.iter().enumerate() {
            let mut diff = i64::from(limb) - i64::from(other.0.get(i).copied().unwrap_or(0)) - borrow;
            borrow = i64::from(diff < 0);
            if diff < 0 {
                diff += 1 << 32;
            }
            out.push(diff as u32);
        }
        let mut big = Big(out);
        big.trim();
        big
    }

    fn add(&self, other: &Big) -> Big {
        let mut out = Vec::with_capacity(self.0.len().max(other.0.len()) + 1);
        let mut carry = 0u64;
        for i in 0..self.0.len().max(other.0.len()) {
            let sum = u64::from(self.0.get(i).copied().unwrap_or(0))
                + u64::from(other.0.get(i).copied().unwrap_or(0))
                + carry;
            out.push(sum as u32);
            carry = sum >> 32;
        }
        if carry > 0 {
            out.push(carry as u32);
        }
        Big(out)
    }

    /// Quotient and whether the remainder is non-zero (bitwise long division).
    fn div(&self, divisor: &Big) -> (Big, bool) {
        let mut quotient = Big(vec![0; self.0.len()]);
        let mut remainder = Big(Vec::new());
        for i in (0..self.bits()).rev() {
            remainder = remainder.shl(1);
            if self.bit(i) {
                remainder.add_small(1);
            }
            if remainder.cmp(divisor) != Ordering::Less {
                remainder = remainder.sub(divisor);
                quotient.0[i / 32] |= 1 << (i % 32);
            }
        }
        quotient.trim();
        (quotient, !remainder.is_zero())
    }

    /// Divides by a small number; returns the remainder.
    fn div_small(&mut self, divisor: u32) -> u32 {
        let mut remainder = 0u64;
        for limb in self.0.iter_mut().rev() {
            let current = (remainder << 32) | u64::from(*limb);
            *limb = (current / u64::from(divisor)) as u32;
            remainder = current % u64::from(divisor);
        }
        self.trim();
        remainder as u32
    }

    fn to_decimal(&self) -> String {
        if self.is_zero() {
            return "0".into();
        }
        let mut value = self.clone();
        let mut chunks = Vec::new();
        while !value.is_zero() {
            chunks.push(value.div_small(1_000_000_000));
        }
        let mut text = chunks.pop().unwrap_or(0).to_string();
        for chunk in chunks.iter().rev() {
            text.push_str(&format!("{chunk:09}"));
        }
        text
    }
}

/// An extended-precision value: `(-1)^negative * mantissa * 2^exponent`, mantissa < 2^64.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ext {
    negative: bool,
    mantissa: u64,
    exponent: i64,
    infinite: bool,
}

impl Ext {
    const ZERO: Ext = Ext { negative: false, mantissa: 0, exponent: 0, infinite: false };

    /// True for ±infinity.
    pub fn is_infinite(&self) -> bool {
        self.infinite
    }

    /// Rounds `magnitude * 2^exponent` (plus a sticky "something below" flag) to 64 mantissa bits.
    fn round(negative: bool, magnitude: &Big, exponent: i64, sticky: bool) -> Ext {
        if magnitude.is_zero() {
            return Ext { negative, ..Ext::ZERO };
        }
        let bits = magnitude.bits();
        let (mut mantissa, mut exponent) = if bits <= MANTISSA_BITS {
            let (value, _) = magnitude.shr(0);
            let mantissa = value.0.iter().rev().fold(0u64, |acc, &limb| (acc << 32) | u64::from(limb));
            (mantissa, exponent)
        } else {
            let shift = bits - MANTISSA_BITS;
            let (top, _) = magnitude.shr(shift);
            let mantissa = top.0.iter().rev().fold(0u64, |acc, &limb| (acc << 32) | u64::from(limb));
            let half = magnitude.bit(shift - 1);
            let below = sticky || (0..shift - 1).any(|i| magnitude.bit(i));
            let mut mantissa = mantissa;
            let mut exponent = exponent + shift as i64;
            if half && (below || mantissa & 1 == 1) {
                mantissa = mantissa.wrapping_add(1);
                if mantissa == 0 {
                    mantissa = 1 << 63;
                    exponent += 1;
                }
            }
            (mantissa, exponent)
        };
        // Normalise so that the leading bit is bit 63 (keeps exponent checks simple).
        let lead = mantissa.leading_zeros();
        mantissa <<= lead;
        exponent -= i64::from(lead);
        let top_exponent = exponent + 63;
        if top_exponent > MAX_EXPONENT {
            return Ext { negative, mantissa: 0, exponent: 0, infinite: true };
        }
        if top_exponent < MIN_EXPONENT {
            return Ext { negative, ..Ext::ZERO };
        }
        Ext { negative, mantissa, exponent, infinite: false }
    }

    fn from_f64(value: f64) -> Ext {
        if value.is_infinite() {
            return Ext { negative: value < 0.0, mantissa: 0, exponent: 0, infinite: true };
        }
        if value == 0.0 {
            return Ext { negative: value.is_sign_negative(), ..Ext::ZERO };
        }
        let bits = value.to_bits();
        let raw_exponent = ((bits >> 52) & 0x7ff) as i64;
        let fraction = bits & ((1 << 52) - 1);
        let (mantissa, exponent) =
            if raw_exponent == 0 { (fraction, -1074) } else { (fraction | (1 << 52), raw_exponent - 1075) };
        Ext::round(value < 0.0, &Big::from_u64(mantissa), exponent, false)
    }

    /// Parses text as `strtold` does (decimal or hex, `inf`/`infinity`), rejecting NaN, spaces and trailing
    /// garbage.
    pub fn parse(text: &[u8]) -> Option<Ext> {
        let text = std::str::from_utf8(text).ok()?;
        let (negative, body) = match text.as_bytes().first()? {
            b'-' => (true, &text[1..]),
            b'+' => (false, &text[1..]),
            _ => (false, text),
        };
        let lower = body.to_ascii_lowercase();
        if lower == "inf" || lower == "infinity" {
            return Some(Ext { negative, mantissa: 0, exponent: 0, infinite: true });
        }
        if lower.starts_with("0x") {
            return super::args::parse_f64(text.as_bytes()).map(Ext::from_f64);
        }
        let (number, exponent_text) = match body.find(['e', 'E']) {
            Some(i) => (&body[..i], Some(&body[i + 1..])),
            None => (body, None),
        };
        let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
        if int_part.is_empty() && frac_part.is_empty() {
            return None;
        }
        if !int_part.bytes().chain(frac_part.bytes()).all(|b| b.is_ascii_digit()) {
            return None;
        }
        let mut exponent10: i64 = match exponent_text {
            None => 0,
            Some(e) => {
                let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                e.parse::<i64>().unwrap_or(if e.starts_with('-') { -100_000 } else { 100_000 }).clamp(-100_000, 100_000)
            }
        };
        let mut digits = Big(Vec::new());
        for b in int_part.bytes().chain(frac_part.bytes()) {
            digits.mul_small(10);
            digits.add_small(u32::from(b - b'0'));
        }
        exponent10 -= frac_part.len() as i64;
        if digits.is_zero() {
            return Some(Ext { negative, ..Ext::ZERO });
        }
        // strtold reports overflow and underflow to zero as ERANGE, which Redis treats as "not a float".
        if !(-5500..=5000).contains(&exponent10) {
            return None;
        }
        let value = if exponent10 >= 0 {
            digits.mul_pow10(exponent10 as usize);
            Ext::round(negative, &digits, 0, false)
        } else {
            let mut divisor = Big::from_u64(1);
            divisor.mul_pow10((-exponent10) as usize);
            let shift = (MANTISSA_BITS + 2 + divisor.bits()).saturating_sub(digits.bits());
            let (quotient, inexact) = digits.shl(shift).div(&divisor);
            Ext::round(negative, &quotient, -(shift as i64), inexact)
        };
        (!value.infinite && value.mantissa != 0).then_some(value)
    }

    /// `self + other`, rounded once.
    pub fn plus(self, other: Ext) -> Ext {
        if self.infinite || other.infinite {
            return if self.infinite { self } else { other };
        }
        if self.mantissa == 0 {
            return other;
        }
        if other.mantissa == 0 {
            return self;
        }
        let (high, mut low) = if self.exponent >= other.exponent { (self, other) } else { (other, self) };
        // A much smaller operand only matters for rounding: keep it as a sticky bit below.
        if high.exponent - low.exponent > 200 {
            low = Ext { mantissa: 1, exponent: high.exponent - 200, ..low };
        }
        let a = Big::from_u64(high.mantissa).shl((high.exponent - low.exponent) as usize);
        let b = Big::from_u64(low.mantissa);
        let (negative, magnitude) = if high.negative == low.negative {
            (high.negative, a.add(&b))
        } else {
            match a.cmp(&b) {
                Ordering::Less => (low.negative, b.sub(&a)),
                _ => (high.negative, a.sub(&b)),
            }
        };
        Ext::round(negative, &magnitude, low.exponent, false)
    }

    /// `%.17Lf` with trailing zeros (and a trailing `.`) removed, and `-0` printed as `0`: Redis's
    /// "human friendly" long double text.
    pub fn to_human(self) -> String {
        let mut scaled = Big::from_u64(self.mantissa);
        scaled.mul_pow10(17);
        let rounded = if self.exponent >= 0 {
            scaled.shl(self.exponent as usize)
        } else {
            let shift = (-self.exponent) as usize;
            let (mut quotient, _) = scaled.shr(shift);
            let half = shift >= 1 && scaled.bit(shift - 1);
            let below = shift >= 2 && (0..shift - 1).any(|i| scaled.bit(i));
            if half && (below || quotient.bit(0)) {
                quotient.add_small(1);
            }
            quotient
        };
        let digits = format!("{:0>18}", rounded.to_decimal());
        let (int_part, frac_part) = digits.split_at(digits.len() - 17);
        let frac_part = frac_part.trim_end_matches('0');
        let mut text = String::new();
        if self.negative && !(int_part.bytes().all(|b| b == b'0') && frac_part.is_empty()) {
            text.push('-');
        }
        text.push_str(int_part);
        if !frac_part.is_empty() {
            text.push('.');
            text.push_str(frac_part);
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::Ext;

    fn sum(a: &str, b: &str) -> String {
        Ext::parse(a.as_bytes()).unwrap().plus(Ext::parse(b.as_bytes()).unwrap()).to_human()
    }

    #[test]
    fn matches_redis_long_double_text() {
        // Expected texts are what redis-server 7.0 (x86-64) replies.
        assert_eq!(sum("10.5", "0.1"), "10.6");
        assert_eq!(sum("5.6", "5000"), "5005.60000000000000009");
        assert_eq!(sum("0.1", "0.2"), "0.3");
        assert_eq!(sum("3", "1.5"), "4.5");
        assert_eq!(sum("9223372036854775807", "1"), "9223372036854775808");
        assert_eq!(sum("-1.5", "1.5"), "0");
        assert_eq!(sum("0", "-0.0001"), "-0.0001");
        assert_eq!(sum("1e3", "1"), "1001");
    }

    #[test]
    fn parsing_rejects_what_strtold_would_not_fully_consume() {
        for bad in ["", "abc", "1e", "1.2.3", " 1", "1 ", "nan", "e5", "."] {
            assert!(Ext::parse(bad.as_bytes()).is_none(), "{bad}");
        }
        assert!(Ext::parse(b"inf").unwrap().is_infinite());
        assert!(Ext::parse(b"1e5000").is_none());
        assert!(Ext::parse(b"1e-5000").is_none());
        assert!(Ext::parse(b"1.").is_some() && Ext::parse(b".5").is_some() && Ext::parse(b"+.5e1").is_some());
    }
}

//! INCRBYFLOAT's arithmetic exactly as redis-server does it on x86-64: the value and the
//! increment read as 80-bit long doubles (`strtold`, correctly rounded), added with one
//! rounding to a 64-bit mantissa (to nearest, ties to even), and printed with `%.17Lf` with the
//! trailing zeros trimmed. Rust has no long double, so [`Ext`] models one with a small
//! unsigned big integer ([`Big`]) for the exact steps in between.
//!
//! Invariants: a finite non-zero [`Ext`] has its mantissa's top bit set; every rounding is
//! to nearest, ties to even, from the exact value (a "sticky" flag keeps the bits dropped on
//! the way); the exponent range is the x87 one (a result past it is infinite).

use std::cmp::Ordering;

/// An unsigned big integer, 32-bit limbs, least significant first, no zero limbs at the top.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Big(Vec<u32>);

impl Big {
    fn from_u64(n: u64) -> Big {
        let mut b = Big(vec![n as u32, (n >> 32) as u32]);
        b.trim();
        b
    }

    fn trim(&mut self) {
        while self.0.last() == Some(&0) {
            self.0.pop();
        }
    }

    fn is_zero(&self) -> bool {
        self.0.is_empty()
    }

    fn bit_len(&self) -> u64 {
        self.0.last().map_or(0, |top| 32 * (self.0.len() as u64 - 1) + u64::from(32 - top.leading_zeros()))
    }

    fn bit(&self, i: u64) -> bool {
        self.0.get((i / 32) as usize).is_some_and(|l| (l >> (i % 32)) & 1 == 1)
    }

    /// Whether any of the bits below `i` is set.
    fn any_below(&self, i: u64) -> bool {
        let (limbs, bits) = ((i / 32) as usize, i % 32);
        self.0.iter().take(limbs).any(|l| *l != 0) || self.0.get(limbs).is_some_and(|l| l & ((1 << bits) - 1) != 0)
    }

    /// `self * m + a`.
    fn mul_add_small(&mut self, m: u32, a: u32) {
        let mut carry = u64::from(a);
        for l in &mut self.0 {
            let v = u64::from(*l) * u64::from(m) + carry;
            *l = v as u32;
            carry = v >> 32;
        }
        if carry > 0 {
            self.0.push(carry as u32);
        }
        self.trim();
    }

    /// `self / d`, in place; whether there was a remainder.
    fn div_small(&mut self, d: u32) -> u32 {
        let mut rem = 0u64;
        for l in self.0.iter_mut().rev() {
            let v = (rem << 32) | u64::from(*l);
            *l = (v / u64::from(d)) as u32;
            rem = v % u64::from(d);
        }
        self.trim();
        rem as u32
    }

    fn shl(&self, n: u64) -> Big {
        let (limbs, bits) = ((n / 32) as usize, n % 32);
        let mut out = vec![0u32; limbs];
        let mut carry = 0u32;
        for l in &self.0 {
            out.push(if bits == 0 { *l } else { (l << bits) | carry });
            carry = if bits == 0 { 0 } else { l >> (32 - bits) };
        }
        out.push(carry);
        let mut b = Big(out);
        b.trim();
        b
    }

    fn shr(&self, n: u64) -> Big {
        let (limbs, bits) = ((n / 32) as usize, n % 32);
        let src = self.0.get(limbs..).unwrap_or(&[]);
        let mut out = Vec::with_capacity(src.len());
        for (i, l) in src.iter().enumerate() {
            let high = if bits == 0 { 0 } else { src.get(i + 1).map_or(0, |h| h << (32 - bits)) };
            out.push((l >> bits) | high);
        }
        let mut b = Big(out);
        b.trim();
        b
    }

    fn low_u64(&self) -> u64 {
        u64::from(self.0.first().copied().unwrap_or(0)) | (u64::from(self.0.get(1).copied().unwrap_or(0)) << 32)
    }

    fn cmp(&self, other: &Big) -> Ordering {
        self.0.len().cmp(&other.0.len()).then_with(|| self.0.iter().rev().cmp(other.0.iter().rev()))
    }

    fn add(&self, other: &Big) -> Big {
        let mut out = Vec::with_capacity(self.0.len().max(other.0.len()) + 1);
        let mut carry = 0u64;
        for i in 0..self.0.len().max(other.0.len()) {
            let v = u64::from(self.0.get(i).copied().unwrap_or(0))
                + u64::from(other.0.get(i).copied().unwrap_or(0))
                + carry;
            out.push(v as u32);
            carry = v >> 32;
        }
        out.push(carry as u32);
        let mut b = Big(out);
        b.trim();
        b
    }

    /// `self - other`, `self >= other`.
    fn sub(&self, other: &Big) -> Big {
        let mut out = Vec::with_capacity(self.0.len());
        let mut borrow = 0i64;
        for i in 0..self.0.len() {
            let mut v = i64::from(self.0[i]) - i64::from(other.0.get(i).copied().unwrap_or(0)) - borrow;
            borrow = i64::from(v < 0);
            if v < 0 {
                v += 1 << 32;
            }
            out.push(v as u32);
        }
        let mut b = Big(out);
        b.trim();
        b
    }

    fn to_decimal(&self) -> String {
        let mut n = self.clone();
        let mut chunks = Vec::new();
        while !n.is_zero() {
            chunks.push(n.div_small(1_000_000_000));
        }
        let mut text = chunks.pop().map_or("0".to_owned(), |c| c.to_string());
        for c in chunks.iter().rev() {
            text.push_str(&format!("{c:09}"));
        }
        text
    }
}

/// The largest binary exponent (of the value's top bit) an x87 long double holds.
const MAX_EXP: i64 = 16383;

/// An 80-bit long double: `(-1)^neg * mant * 2^exp`, or infinite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ext {
    /// A finite value (`mant` 0: zero).
    Finite {
        /// The sign.
        neg: bool,
        /// The mantissa, top bit set unless zero.
        mant: u64,
        /// The binary exponent of the mantissa's last bit.
        exp: i64,
    },
    /// An infinity.
    Inf(bool),
}

/// `n * 2^exp` rounded to a 64-bit mantissa (`sticky`: bits below `n` were dropped).
fn round(neg: bool, n: &Big, sticky: bool, exp: i64) -> Ext {
    let len = n.bit_len();
    if len == 0 {
        return Ext::Finite { neg, mant: 0, exp: 0 };
    }
    let (mut mant, mut exp) = if len <= 64 {
        (n.low_u64() << (64 - len), exp - (64 - len as i64))
    } else {
        let shift = len - 64;
        let mut mant = n.shr(shift).low_u64();
        let half = n.bit(shift - 1);
        let lower = sticky || n.any_below(shift - 1);
        let mut exp = exp + shift as i64;
        if half && (lower || mant & 1 == 1) {
            mant = mant.wrapping_add(1);
            if mant == 0 {
                mant = 1 << 63;
                exp += 1;
            }
        }
        (mant, exp)
    };
    if exp + 63 > MAX_EXP {
        return Ext::Inf(neg);
    }
    if exp + 63 < -MAX_EXP - 63 {
        (mant, exp) = (0, 0);
    }
    Ext::Finite { neg, mant, exp }
}

/// A float as `strtold` reads one (decimal digits, `.`, exponent; `inf`/`infinity`), or
/// `None` for what it does not read (hexadecimal floats are not read here).
pub fn parse(text: &str) -> Option<Ext> {
    let (neg, body) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    if body.eq_ignore_ascii_case("inf") || body.eq_ignore_ascii_case("infinity") {
        return Some(Ext::Inf(neg));
    }
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], body[i + 1..].parse::<i64>().ok()?),
        None => (body, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() && frac.is_empty() || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut d = Big(Vec::new());
    for b in int.bytes().chain(frac.bytes()) {
        d.mul_add_small(10, u32::from(b - b'0'));
    }
    let e10 = exponent.checked_sub(frac.len() as i64)?;
    if d.is_zero() || e10 < -20_000 {
        return Some(Ext::Finite { neg, mant: 0, exp: 0 });
    }
    if e10 > 5000 {
        return Some(Ext::Inf(neg));
    }
    if e10 >= 0 {
        for _ in 0..e10 {
            d.mul_add_small(10, 0);
        }
        return Some(round(neg, &d, false, 0));
    }
    let n = e10.unsigned_abs();
    let k = (70 + n * 3322 / 1000 + 1).saturating_sub(d.bit_len());
    let mut q = d.shl(k);
    let mut sticky = false;
    for _ in 0..n {
        sticky |= q.div_small(10) != 0;
    }
    Some(round(neg, &q, sticky, -(k as i64)))
}

/// `a + b`, rounded once; `None` for NaN (infinities of both signs).
pub fn add(a: Ext, b: Ext) -> Option<Ext> {
    let (Ext::Finite { neg: na, mant: ma, exp: ea }, Ext::Finite { neg: nb, mant: mb, exp: eb }) = (a, b) else {
        return match (a, b) {
            (Ext::Inf(x), Ext::Inf(y)) if x != y => None,
            (Ext::Inf(x), _) | (_, Ext::Inf(x)) => Some(Ext::Inf(x)),
            _ => None,
        };
    };
    if ma == 0 {
        return Some(b);
    }
    if mb == 0 {
        return Some(a);
    }
    let e = ea.min(eb);
    let x = Big::from_u64(ma).shl((ea - e) as u64);
    let y = Big::from_u64(mb).shl((eb - e) as u64);
    Some(if na == nb {
        round(na, &x.add(&y), false, e)
    } else {
        match x.cmp(&y) {
            Ordering::Equal => Ext::Finite { neg: false, mant: 0, exp: 0 },
            Ordering::Greater => round(na, &x.sub(&y), false, e),
            Ordering::Less => round(nb, &y.sub(&x), false, e),
        }
    })
}

/// `%.17Lf` of a finite value, trailing zeros (and a bare `.`) trimmed, `-0` as `0`: Redis's
/// `ld2string(..., LD_STR_HUMAN)`.
pub fn format(v: Ext) -> String {
    let Ext::Finite { neg, mant, exp } = v else { return if v == Ext::Inf(true) { "-inf" } else { "inf" }.to_owned() };
    let mut t = Big::from_u64(mant);
    for _ in 0..17 {
        t.mul_add_small(10, 0);
    }
    let x = if exp >= 0 {
        t.shl(exp as u64)
    } else {
        let shift = exp.unsigned_abs();
        let mut x = t.shr(shift);
        if shift > 0 && t.bit(shift - 1) && (t.any_below(shift - 1) || x.bit(0)) {
            x = x.add(&Big::from_u64(1));
        }
        x
    };
    let digits = format!("{:0>18}", x.to_decimal());
    let (int, frac) = digits.split_at(digits.len() - 17);
    let mut text = format!("{}{int}.{frac}", if neg { "-" } else { "" });
    while text.ends_with('0') {
        text.pop();
    }
    if text.ends_with('.') {
        text.pop();
    }
    if text == "-0" {
        text = "0".to_owned();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(a: &str, b: &str) -> String {
        format(add(parse(a).unwrap(), parse(b).unwrap()).unwrap())
    }

    #[test]
    fn sums_print_as_redis_server_prints_them() {
        // Each expected text is redis-server 7.0.15's reply on x86-64.
        assert_eq!(sum("10.5", "0.1"), "10.6");
        assert_eq!(sum("10.6", "-5"), "5.6");
        assert_eq!(sum("5.6", "5.0e3"), "5005.60000000000000009");
        assert_eq!(sum("5005.60000000000000009", "2.0e-2"), "5005.62000000000000011");
        assert_eq!(sum("0.1", "0.2"), "0.3");
        assert_eq!(sum("3", "-3"), "0");
        assert_eq!(sum("0", "-1.5"), "-1.5");
        assert_eq!(sum("1e3", "1"), "1001");
        assert_eq!(sum("0", "1e20"), "100000000000000000000");
        assert!(sum("0", "1e400").starts_with("10000000000000000000281880683947586514586453433629052038625910693539685534008629862039363994848324160522094053927317616200295822777259255734023828976593340661017797447434546173917862448116674971723778943824391593338047470675026246684401359237513603830343735485505244955964979021825038280091068414947402456898653040951017512658092615827588920183472511643316591362664138176309734806343732497430221946880"));
    }

    #[test]
    fn strtold_reads_what_it_reads() {
        assert!(parse(".5").is_some() && parse("5.").is_some() && parse("+1.5").is_some());
        assert_eq!(parse("inf"), Some(Ext::Inf(false)));
        assert!(parse("1e").is_none() && parse("").is_none() && parse(".").is_none() && parse("1x").is_none());
        assert_eq!(add(Ext::Inf(false), Ext::Inf(true)), None);
    }
}

//! Arrow cells → bytes: the JSON form of `--value-json` and the text form of `--value`, `--value-hash`
//! and keys. The rules are fixtures/parquet/README.md's table (timestamps as epoch milliseconds, dates as
//! days, decimals as exact strings, binary as base64 inside JSON); docs/tools.md §"ingest-parquet" lists
//! them. Objects keep schema order, so the JSON is written by hand rather than through a sorted map.

use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{Array, ArrowPrimitiveType};
use arrow_schema::{DataType, TimeUnit};

/// Why a type cannot be converted at all (checked once per column, before any row is read).
pub fn check_supported(data_type: &DataType) -> Result<(), String> {
    match data_type {
        DataType::Null
        | DataType::Boolean
        | DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64
        | DataType::Float16
        | DataType::Float32
        | DataType::Float64
        | DataType::Utf8
        | DataType::LargeUtf8
        | DataType::Utf8View
        | DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_)
        | DataType::Decimal32(_, _)
        | DataType::Decimal64(_, _)
        | DataType::Decimal128(_, _)
        | DataType::Decimal256(_, _)
        | DataType::Duration(_)
        | DataType::Date32
        | DataType::Date64
        | DataType::Time32(_)
        | DataType::Time64(_)
        | DataType::Timestamp(_, _) => Ok(()),
        DataType::List(field) | DataType::LargeList(field) | DataType::FixedSizeList(field, _) => {
            check_supported(field.data_type())
        }
        DataType::Struct(fields) => fields.iter().try_for_each(|field| check_supported(field.data_type())),
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(fields) => fields.iter().try_for_each(|field| check_supported(field.data_type())),
            other => Err(format!("map entries of type {other} are not supported")),
        },
        DataType::Dictionary(key, value) if key.is_integer() => check_supported(value),
        other => Err(format!("type {other} is not supported")),
    }
}

/// True for the types a key column may have: strings, binary and integers (dictionary-encoded or not).
pub fn is_key_type(data_type: &DataType) -> bool {
    match data_type {
        DataType::Dictionary(_, value) => is_key_type(value),
        DataType::Utf8
        | DataType::LargeUtf8
        | DataType::Utf8View
        | DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => true,
        other => other.is_integer(),
    }
}

/// True for integer and timestamp types (expire-at columns).
pub fn is_time_type(data_type: &DataType) -> bool {
    match data_type {
        DataType::Dictionary(_, value) => is_time_type(value),
        DataType::Timestamp(_, _) => true,
        other => other.is_integer(),
    }
}

/// True for integer and duration types (TTL columns).
pub fn is_duration_type(data_type: &DataType) -> bool {
    match data_type {
        DataType::Dictionary(_, value) => is_duration_type(value),
        DataType::Duration(_) => true,
        other => other.is_integer(),
    }
}

/// The cell as a signed integer (integer columns), or for a timestamp its epoch milliseconds and for a
/// duration its milliseconds (the flag says the value is already in milliseconds); None if null.
pub fn integer_at(array: &dyn Array, row: usize) -> Result<Option<(i128, bool)>, String> {
    if array.is_null(row) {
        return Ok(None);
    }
    macro_rules! int {
        ($t:ty) => {
            Ok(Some((array.as_primitive::<$t>().value(row) as i128, false)))
        };
    }
    match array.data_type() {
        DataType::Int8 => int!(Int8Type),
        DataType::Int16 => int!(Int16Type),
        DataType::Int32 => int!(Int32Type),
        DataType::Int64 => int!(Int64Type),
        DataType::UInt8 => int!(UInt8Type),
        DataType::UInt16 => int!(UInt16Type),
        DataType::UInt32 => int!(UInt32Type),
        DataType::UInt64 => int!(UInt64Type),
        DataType::Timestamp(unit, _) => Ok(Some((timestamp_ms(array, row, *unit) as i128, true))),
        DataType::Duration(unit) => Ok(Some((duration_ms(array, row, *unit) as i128, true))),
        DataType::Dictionary(_, _) => {
            let (values, index) = dictionary_at(array, row);
            integer_at(values, index)
        }
        other => Err(format!("type {other} is not an integer")),
    }
}

fn timestamp_ms(array: &dyn Array, row: usize, unit: TimeUnit) -> i64 {
    match unit {
        TimeUnit::Second => array.as_primitive::<TimestampSecondType>().value(row).saturating_mul(1000),
        TimeUnit::Millisecond => array.as_primitive::<TimestampMillisecondType>().value(row),
        TimeUnit::Microsecond => array.as_primitive::<TimestampMicrosecondType>().value(row).div_euclid(1000),
        TimeUnit::Nanosecond => array.as_primitive::<TimestampNanosecondType>().value(row).div_euclid(1_000_000),
    }
}

/// A duration in whole milliseconds, rounded towards minus infinity as timestamps are.
fn duration_ms(array: &dyn Array, row: usize, unit: TimeUnit) -> i64 {
    match unit {
        TimeUnit::Second => array.as_primitive::<DurationSecondType>().value(row).saturating_mul(1000),
        TimeUnit::Millisecond => array.as_primitive::<DurationMillisecondType>().value(row),
        TimeUnit::Microsecond => array.as_primitive::<DurationMicrosecondType>().value(row).div_euclid(1000),
        TimeUnit::Nanosecond => array.as_primitive::<DurationNanosecondType>().value(row).div_euclid(1_000_000),
    }
}

/// The values array of a dictionary cell and the index into it.
fn dictionary_at(array: &dyn Array, row: usize) -> (&dyn Array, usize) {
    macro_rules! dict {
        ($t:ty) => {{
            let dict = array.as_dictionary::<$t>();
            (dict.values().as_ref(), dict.keys().value(row) as usize)
        }};
    }
    match array.data_type() {
        DataType::Dictionary(key, _) => match key.as_ref() {
            DataType::Int8 => dict!(Int8Type),
            DataType::Int16 => dict!(Int16Type),
            DataType::Int32 => dict!(Int32Type),
            DataType::Int64 => dict!(Int64Type),
            DataType::UInt8 => dict!(UInt8Type),
            DataType::UInt16 => dict!(UInt16Type),
            DataType::UInt32 => dict!(UInt32Type),
            _ => dict!(UInt64Type),
        },
        _ => unreachable!("dictionary_at on a non-dictionary array"),
    }
}

/// Appends the cell's text form (strings and binary raw, decimals as exact strings, everything else as its
/// JSON) to `out`; false (nothing appended) when the cell is null.
pub fn write_text(array: &dyn Array, row: usize, out: &mut Vec<u8>) -> Result<bool, String> {
    if array.is_null(row) {
        return Ok(false);
    }
    match array.data_type() {
        DataType::Utf8 => out.extend_from_slice(array.as_string::<i32>().value(row).as_bytes()),
        DataType::LargeUtf8 => out.extend_from_slice(array.as_string::<i64>().value(row).as_bytes()),
        DataType::Utf8View => out.extend_from_slice(array.as_string_view().value(row).as_bytes()),
        DataType::Binary => out.extend_from_slice(array.as_binary::<i32>().value(row)),
        DataType::LargeBinary => out.extend_from_slice(array.as_binary::<i64>().value(row)),
        DataType::BinaryView => out.extend_from_slice(array.as_binary_view().value(row)),
        DataType::FixedSizeBinary(_) => out.extend_from_slice(array.as_fixed_size_binary().value(row)),
        DataType::Decimal32(_, _)
        | DataType::Decimal64(_, _)
        | DataType::Decimal128(_, _)
        | DataType::Decimal256(_, _) => out.extend_from_slice(decimal_at(array, row).as_bytes()),
        DataType::Float16 | DataType::Float32 | DataType::Float64 => {
            let value = float_at(array, row);
            if value.is_finite() {
                write_json(array, row, out)?;
            } else {
                // As Redis prints an infinite float (INCRBYFLOAT, ZSCORE).
                out.extend_from_slice(if value.is_nan() {
                    b"nan"
                } else if value > 0.0 {
                    b"inf"
                } else {
                    b"-inf"
                });
            }
        }
        DataType::Dictionary(_, _) => {
            let (values, index) = dictionary_at(array, row);
            return write_text(values, index, out);
        }
        _ => write_json(array, row, out)?,
    }
    Ok(true)
}

fn float_at(array: &dyn Array, row: usize) -> f64 {
    match array.data_type() {
        DataType::Float16 => f64::from(array.as_primitive::<Float16Type>().value(row)),
        DataType::Float32 => array.as_primitive::<Float32Type>().value(row) as f64,
        _ => array.as_primitive::<Float64Type>().value(row),
    }
}

/// A decimal cell of any width as an exact string with its scale's digits after the point.
fn decimal_at(array: &dyn Array, row: usize) -> String {
    match array.data_type() {
        DataType::Decimal32(_, scale) => decimal(&array.as_primitive::<Decimal32Type>().value(row).to_string(), *scale),
        DataType::Decimal64(_, scale) => decimal(&array.as_primitive::<Decimal64Type>().value(row).to_string(), *scale),
        DataType::Decimal128(_, scale) => {
            decimal(&array.as_primitive::<Decimal128Type>().value(row).to_string(), *scale)
        }
        DataType::Decimal256(_, scale) => {
            decimal(&array.as_primitive::<Decimal256Type>().value(row).to_string(), *scale)
        }
        other => unreachable!("decimal_at on {other}"),
    }
}

/// Places the point in an unscaled integer's decimal text (`-123`, scale 2 → `-1.23`).
fn decimal(unscaled: &str, scale: i8) -> String {
    if scale <= 0 {
        let mut text = unscaled.to_string();
        text.extend(std::iter::repeat_n('0', (-scale) as usize));
        return text;
    }
    let scale = scale as usize;
    let (negative, digits) = match unscaled.strip_prefix('-') {
        Some(digits) => (true, digits),
        None => (false, unscaled),
    };
    let digits = if digits.len() <= scale {
        format!("{}{digits}", "0".repeat(scale + 1 - digits.len()))
    } else {
        digits.to_string()
    };
    let (whole, fraction) = digits.split_at(digits.len() - scale);
    format!("{}{whole}.{fraction}", if negative { "-" } else { "" })
}

fn write_primitive<T: ArrowPrimitiveType>(array: &dyn Array, row: usize, out: &mut Vec<u8>)
where
    T::Native: itoa::Integer,
{
    out.extend_from_slice(itoa::Buffer::new().format(array.as_primitive::<T>().value(row)).as_bytes());
}

/// Appends `text` as a JSON string.
pub fn write_string(text: &str, out: &mut Vec<u8>) {
    // serde_json's escaping: control characters and quotes escaped, everything else as UTF-8.
    serde_json::to_writer(&mut *out, text).expect("writing to a Vec cannot fail");
}

/// Appends the cell as JSON (null as `null`). Fails for a float that JSON cannot hold (NaN, ±Inf).
pub fn write_json(array: &dyn Array, row: usize, out: &mut Vec<u8>) -> Result<(), String> {
    if array.is_null(row) {
        out.extend_from_slice(b"null");
        return Ok(());
    }
    match array.data_type() {
        DataType::Null => out.extend_from_slice(b"null"),
        DataType::Boolean => out.extend_from_slice(if array.as_boolean().value(row) { b"true" } else { b"false" }),
        DataType::Int8 => write_primitive::<Int8Type>(array, row, out),
        DataType::Int16 => write_primitive::<Int16Type>(array, row, out),
        DataType::Int32 => write_primitive::<Int32Type>(array, row, out),
        DataType::Int64 => write_primitive::<Int64Type>(array, row, out),
        DataType::UInt8 => write_primitive::<UInt8Type>(array, row, out),
        DataType::UInt16 => write_primitive::<UInt16Type>(array, row, out),
        DataType::UInt32 => write_primitive::<UInt32Type>(array, row, out),
        DataType::UInt64 => write_primitive::<UInt64Type>(array, row, out),
        DataType::Float16 | DataType::Float32 | DataType::Float64 => {
            let value = float_at(array, row);
            if !value.is_finite() {
                return Err(format!("float {value} has no JSON form"));
            }
            let number =
                serde_json::Number::from_f64(value).ok_or_else(|| format!("float {value} has no JSON form"))?;
            out.extend_from_slice(number.to_string().as_bytes());
        }
        DataType::Utf8 => write_string(array.as_string::<i32>().value(row), out),
        DataType::LargeUtf8 => write_string(array.as_string::<i64>().value(row), out),
        DataType::Utf8View => write_string(array.as_string_view().value(row), out),
        DataType::Binary => write_base64(array.as_binary::<i32>().value(row), out),
        DataType::LargeBinary => write_base64(array.as_binary::<i64>().value(row), out),
        DataType::BinaryView => write_base64(array.as_binary_view().value(row), out),
        DataType::FixedSizeBinary(_) => write_base64(array.as_fixed_size_binary().value(row), out),
        DataType::Decimal32(_, _)
        | DataType::Decimal64(_, _)
        | DataType::Decimal128(_, _)
        | DataType::Decimal256(_, _) => write_string(&decimal_at(array, row), out),
        DataType::Duration(unit) => {
            out.extend_from_slice(itoa::Buffer::new().format(duration_ms(array, row, *unit)).as_bytes())
        }
        DataType::Date32 => write_primitive::<Date32Type>(array, row, out),
        DataType::Date64 => {
            let days = array.as_primitive::<Date64Type>().value(row).div_euclid(86_400_000);
            out.extend_from_slice(itoa::Buffer::new().format(days).as_bytes());
        }
        DataType::Time32(unit) => {
            let value = if *unit == TimeUnit::Second {
                array.as_primitive::<Time32SecondType>().value(row) as i64 * 1_000_000
            } else {
                array.as_primitive::<Time32MillisecondType>().value(row) as i64 * 1000
            };
            out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
        }
        DataType::Time64(unit) => {
            let value = if *unit == TimeUnit::Microsecond {
                array.as_primitive::<Time64MicrosecondType>().value(row)
            } else {
                array.as_primitive::<Time64NanosecondType>().value(row) / 1000
            };
            out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
        }
        DataType::Timestamp(unit, _) => {
            out.extend_from_slice(itoa::Buffer::new().format(timestamp_ms(array, row, *unit)).as_bytes())
        }
        DataType::List(_) => {
            let list = array.as_list::<i32>();
            write_list(list.value(row).as_ref(), out)?;
        }
        DataType::LargeList(_) => {
            let list = array.as_list::<i64>();
            write_list(list.value(row).as_ref(), out)?;
        }
        DataType::FixedSizeList(_, _) => {
            let list = array.as_fixed_size_list();
            write_list(list.value(row).as_ref(), out)?;
        }
        DataType::Struct(fields) => {
            let strukt = array.as_struct();
            out.push(b'{');
            for (index, field) in fields.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_string(field.name(), out);
                out.push(b':');
                write_json(strukt.column(index).as_ref(), row, out)?;
            }
            out.push(b'}');
        }
        DataType::Map(_, _) => {
            // A JSON object in the map's own entry order. JSON keys are strings: a string key is written
            // as it is, any other key as the text of its JSON form (the integer 7 as "7").
            let entries = array.as_map().value(row);
            let (keys, values) = (entries.column(0).as_ref(), entries.column(1).as_ref());
            out.push(b'{');
            let mut key_json = Vec::new();
            for index in 0..entries.len() {
                if index > 0 {
                    out.push(b',');
                }
                key_json.clear();
                write_json(keys, index, &mut key_json)?;
                if key_json.first() == Some(&b'"') {
                    out.extend_from_slice(&key_json);
                } else {
                    write_string(std::str::from_utf8(&key_json).expect("JSON is UTF-8"), out);
                }
                out.push(b':');
                write_json(values, index, out)?;
            }
            out.push(b'}');
        }
        DataType::Dictionary(_, _) => {
            let (values, index) = dictionary_at(array, row);
            write_json(values, index, out)?;
        }
        other => return Err(format!("type {other} is not supported")),
    }
    Ok(())
}

fn write_list(items: &dyn Array, out: &mut Vec<u8>) -> Result<(), String> {
    out.push(b'[');
    for index in 0..items.len() {
        if index > 0 {
            out.push(b',');
        }
        write_json(items, index, out)?;
    }
    out.push(b']');
    Ok(())
}

/// Standard base64 with `=` padding (RFC 4648), as a JSON string.
fn write_base64(bytes: &[u8], out: &mut Vec<u8>) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    out.push(b'"');
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        out.push(ALPHABET[(n >> 18) as usize & 63]);
        out.push(ALPHABET[(n >> 12) as usize & 63]);
        out.push(if chunk.len() > 1 { ALPHABET[(n >> 6) as usize & 63] } else { b'=' });
        out.push(if chunk.len() > 2 { ALPHABET[n as usize & 63] } else { b'=' });
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_keep_their_scale() {
        assert_eq!(decimal("-12345600", 4), "-1234.5600");
        assert_eq!(decimal("5", 4), "0.0005");
        assert_eq!(decimal("-5", 2), "-0.05");
        assert_eq!(decimal("12", 0), "12");
        assert_eq!(decimal("12", -2), "1200");
    }

    #[test]
    fn base64_pads() {
        let mut out = Vec::new();
        write_base64(b"foob", &mut out);
        assert_eq!(out, b"\"Zm9vYg==\"");
        out.clear();
        write_base64(b"", &mut out);
        assert_eq!(out, b"\"\"");
    }
}

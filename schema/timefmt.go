package schema

import (
	"fmt"
	"strconv"
	"time"
)

// FormatTime renders t as Python's datetime.isoformat() does for an aware
// datetime: microsecond precision, the fraction left out when it is zero,
// and the offset as ±HH:MM (UTC is "+00:00", never "Z"), so a Python
// consumer's fromisoformat reads it on every Python version.
func FormatTime(t time.Time) string {
	t = t.Truncate(time.Microsecond)
	b := make([]byte, 0, 32)
	b = t.AppendFormat(b, "2006-01-02T15:04:05")
	if us := t.Nanosecond() / 1000; us != 0 {
		b = append(b, '.')
		b = appendPadded(b, us, 6)
	}
	_, offset := t.Zone()
	sign := byte('+')
	if offset < 0 {
		sign, offset = '-', -offset
	}
	b = append(b, sign)
	b = appendPadded(b, offset/3600, 2)
	b = append(b, ':')
	b = appendPadded(b, offset%3600/60, 2)
	if s := offset % 60; s != 0 {
		b = append(b, ':')
		b = appendPadded(b, s, 2)
	}
	return string(b)
}

func appendPadded(b []byte, v, width int) []byte {
	s := strconv.Itoa(v)
	for i := len(s); i < width; i++ {
		b = append(b, '0')
	}
	return append(b, s...)
}

// TimeFormatError reports a datetime string ParseTime cannot read.
type TimeFormatError struct {
	Value  string
	Reason string
}

func (e *TimeFormatError) Error() string {
	return fmt.Sprintf("invalid ISO 8601 datetime %q: %s", e.Value, e.Reason)
}

// ParseTime reads every datetime form a Python producer sends:
// isoformat() output with or without a fraction (1 to 6 digits, longer ones
// are truncated to microseconds like Python 3.11+ does), with "Z", "+00:00"
// or any other offset (±HH:MM, ±HHMM, ±HH:MM:SS), 'T' or ' ' between date
// and time, and seconds optional. A naive value (no offset) is taken as UTC,
// which is what Open edX stores. A bare date is midnight UTC.
func ParseTime(s string) (time.Time, error) {
	p := isoParser{s: s}
	t, err := p.parse()
	if err != nil {
		return time.Time{}, &TimeFormatError{Value: s, Reason: err.Error()}
	}
	return t, nil
}

type isoParser struct {
	s   string
	pos int
}

func (p *isoParser) digits(n int, what string) (int, error) {
	if p.pos+n > len(p.s) {
		return 0, fmt.Errorf("%s: want %d digits at offset %d", what, n, p.pos)
	}
	v := 0
	for i := 0; i < n; i++ {
		c := p.s[p.pos+i]
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%s: want a digit at offset %d, got %q", what, p.pos+i, c)
		}
		v = v*10 + int(c-'0')
	}
	p.pos += n
	return v, nil
}

func (p *isoParser) expect(c byte, what string) error {
	if p.pos >= len(p.s) || p.s[p.pos] != c {
		return fmt.Errorf("want %q before %s at offset %d", c, what, p.pos)
	}
	p.pos++
	return nil
}

func (p *isoParser) more() bool { return p.pos < len(p.s) }

func (p *isoParser) parse() (time.Time, error) {
	year, err := p.digits(4, "year")
	if err != nil {
		return time.Time{}, err
	}
	if err := p.expect('-', "month"); err != nil {
		return time.Time{}, err
	}
	month, err := p.digits(2, "month")
	if err != nil {
		return time.Time{}, err
	}
	if err := p.expect('-', "day"); err != nil {
		return time.Time{}, err
	}
	day, err := p.digits(2, "day")
	if err != nil {
		return time.Time{}, err
	}
	var hour, minute, sec, nsec int
	loc := time.UTC
	if p.more() {
		if c := p.s[p.pos]; c != 'T' && c != 't' && c != ' ' {
			return time.Time{}, fmt.Errorf("want 'T' or ' ' between date and time at offset %d, got %q", p.pos, c)
		}
		p.pos++
		if hour, err = p.digits(2, "hour"); err != nil {
			return time.Time{}, err
		}
		if err := p.expect(':', "minute"); err != nil {
			return time.Time{}, err
		}
		if minute, err = p.digits(2, "minute"); err != nil {
			return time.Time{}, err
		}
		if p.more() && p.s[p.pos] == ':' {
			p.pos++
			if sec, err = p.digits(2, "second"); err != nil {
				return time.Time{}, err
			}
			if p.more() && (p.s[p.pos] == '.' || p.s[p.pos] == ',') {
				p.pos++
				if nsec, err = p.fraction(); err != nil {
					return time.Time{}, err
				}
			}
		}
		if p.more() {
			if loc, err = p.zone(); err != nil {
				return time.Time{}, err
			}
		}
	}
	if p.more() {
		return time.Time{}, fmt.Errorf("unexpected %q at offset %d", p.s[p.pos:], p.pos)
	}
	if month < 1 || month > 12 {
		return time.Time{}, fmt.Errorf("month %d out of range", month)
	}
	if day < 1 || day > daysIn(month, year) {
		return time.Time{}, fmt.Errorf("day %d out of range for %04d-%02d", day, year, month)
	}
	if hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, fmt.Errorf("time %02d:%02d:%02d out of range", hour, minute, sec)
	}
	if year == 0 {
		return time.Time{}, fmt.Errorf("year 0 out of range")
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nsec, loc)
	// Python's datetime cannot hold a UTC instant outside years 1-9999
	// (astimezone raises OverflowError), and FormatTime could not render it
	// in four digits.
	if u := t.UTC(); u.Year() < 1 || u.Year() > 9999 {
		return time.Time{}, fmt.Errorf("instant falls outside years 0001-9999 in UTC")
	}
	return t, nil
}

// fraction reads 1 or more digits of a second fraction, keeping microsecond
// precision as Python does.
func (p *isoParser) fraction() (int, error) {
	start := p.pos
	us, n := 0, 0
	for p.more() && p.s[p.pos] >= '0' && p.s[p.pos] <= '9' {
		if n < 6 {
			us = us*10 + int(p.s[p.pos]-'0')
		}
		n++
		p.pos++
	}
	if n == 0 {
		return 0, fmt.Errorf("empty second fraction at offset %d", start)
	}
	for i := n; i < 6; i++ {
		us *= 10
	}
	return us * 1000, nil
}

func (p *isoParser) zone() (*time.Location, error) {
	c := p.s[p.pos]
	if c == 'Z' || c == 'z' {
		p.pos++
		return time.UTC, nil
	}
	if c != '+' && c != '-' {
		return nil, fmt.Errorf("want 'Z' or an offset at offset %d, got %q", p.pos, c)
	}
	p.pos++
	hh, err := p.digits(2, "offset hours")
	if err != nil {
		return nil, err
	}
	colon := p.more() && p.s[p.pos] == ':'
	if colon {
		p.pos++
	}
	mm, err := p.digits(2, "offset minutes")
	if err != nil {
		return nil, err
	}
	ss := 0
	if colon && p.more() && p.s[p.pos] == ':' {
		p.pos++
		if ss, err = p.digits(2, "offset seconds"); err != nil {
			return nil, err
		}
		// Python may print offset microseconds too; they carry no meaning here.
		if p.more() && p.s[p.pos] == '.' {
			p.pos++
			if _, err := p.fraction(); err != nil {
				return nil, err
			}
		}
	}
	if hh > 23 || mm > 59 || ss > 59 {
		return nil, fmt.Errorf("offset %02d:%02d:%02d out of range", hh, mm, ss)
	}
	offset := hh*3600 + mm*60 + ss
	if c == '-' {
		offset = -offset
	}
	if offset == 0 {
		return time.UTC, nil
	}
	return time.FixedZone("", offset), nil
}

func daysIn(month, year int) int {
	return time.Date(year, time.Month(month)+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// DateTime is an Open edX datetime field: an Avro string holding Python's
// isoformat(). It encodes with FormatTime and decodes with ParseTime, so a
// value that was not in UTC keeps its offset and a naive one becomes UTC.
type DateTime struct{ time.Time }

// NewDateTime wraps t.
func NewDateTime(t time.Time) DateTime { return DateTime{t} }

// MarshalText implements encoding.TextMarshaler (used by hamba/avro for
// string schemas).
func (d DateTime) MarshalText() ([]byte, error) { return []byte(FormatTime(d.Time)), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *DateTime) UnmarshalText(b []byte) error {
	t, err := ParseTime(string(b))
	if err != nil {
		return err
	}
	d.Time = t
	return nil
}

// MarshalJSON renders the isoformat string.
func (d DateTime) MarshalJSON() ([]byte, error) {
	return strconv.AppendQuote(nil, FormatTime(d.Time)), nil
}

// UnmarshalJSON reads an isoformat string.
func (d *DateTime) UnmarshalJSON(b []byte) error {
	s, err := strconv.Unquote(string(b))
	if err != nil {
		return fmt.Errorf("datetime must be a JSON string: %w", err)
	}
	return d.UnmarshalText([]byte(s))
}

// String returns the isoformat string.
func (d DateTime) String() string { return FormatTime(d.Time) }

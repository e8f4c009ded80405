package triggers

import "github.com/callctx/callctx/internal/yamldoc"

// decimal is an exact view of a JSON number literal, so that "12345678901234567891"
// and "12345678901234567890" compare as different numbers although they are the
// same float64. It points into the literal; parsing and comparing never allocate.
//
// The value is 0.d1d2d3… × 10^exp with no leading or trailing zero digits,
// where the digits are intPart followed by fracPart (the decimal point skipped).
type decimal struct {
	neg      bool
	intPart  string // digits before the point, leading zeros removed
	fracPart string // digits after the point, trailing zeros removed (also from intPart when fracPart is empty)
	lead     int    // zero digits to skip at the start of fracPart when intPart is empty
	exp      int
}

// parseDecimal parses s if it is a JSON number literal (RFC 8259 §6).
func parseDecimal(s string) (decimal, bool) {
	n, ok := yamldoc.ScanJSONNumber(s)
	if !ok {
		return decimal{}, false
	}
	d := decimal{neg: n.Neg}
	d.normalise(n.IntPart, n.FracPart, n.Exp)
	return d, true
}

// normalise sets d from the digits of a number's integer and fraction parts
// and its exponent: it strips leading zeros of the integer part, trailing
// zeros of the fraction (and of the integer part when there is no
// fraction).
func (d *decimal) normalise(intPart, fracPart string, exp int) {
	for len(intPart) > 0 && intPart[0] == '0' {
		intPart = intPart[1:]
	}
	for len(fracPart) > 0 && fracPart[len(fracPart)-1] == '0' {
		fracPart = fracPart[:len(fracPart)-1]
	}
	d.exp = exp + len(intPart)
	if fracPart == "" {
		for len(intPart) > 0 && intPart[len(intPart)-1] == '0' {
			intPart = intPart[:len(intPart)-1]
		}
	}
	if intPart == "" {
		for d.lead < len(fracPart) && fracPart[d.lead] == '0' {
			d.lead++
		}
		d.exp -= d.lead
	}
	d.intPart, d.fracPart = intPart, fracPart
	if d.digits() == 0 {
		d.neg = false // -0 is 0
	}
}

func (d decimal) digits() int { return len(d.intPart) + len(d.fracPart) - d.lead }

func (d decimal) digit(i int) byte {
	if i < len(d.intPart) {
		return d.intPart[i]
	}
	return d.fracPart[i-len(d.intPart)+d.lead]
}

// cmpDecimal returns -1, 0 or +1 as a is less than, equal to or greater than b.
func cmpDecimal(a, b decimal) int {
	az, bz := a.digits() == 0, b.digits() == 0
	switch {
	case az && bz:
		return 0
	case az:
		if b.neg {
			return 1
		}
		return -1
	case bz:
		if a.neg {
			return -1
		}
		return 1
	case a.neg != b.neg:
		if a.neg {
			return -1
		}
		return 1
	}
	c := cmpMagnitude(a, b)
	if a.neg {
		return -c
	}
	return c
}

func cmpMagnitude(a, b decimal) int {
	if a.exp != b.exp {
		if a.exp < b.exp {
			return -1
		}
		return 1
	}
	na, nb := a.digits(), b.digits()
	for i := 0; i < na && i < nb; i++ {
		if x, y := a.digit(i), b.digit(i); x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	// No trailing zeros: the one with more digits is larger.
	switch {
	case na < nb:
		return -1
	case na > nb:
		return 1
	}
	return 0
}

// Package sipbridge is where callctx meets the telephone network: it speaks SIP (through
// github.com/emiago/sipgo, which no other package of ours imports), turns the headers and the
// User-to-User information of an inbound INVITE into session variables, and carries a call's
// context out again in a REFER, a new INVITE or a 302 when the call is transferred.
//
// The codecs in this package (UUI, header names and values, URI headers, inbound mapping) are
// pure functions over strings: they never log, they return errors that say what was wrong, and
// every one of them has a table test and a fuzz test because all of their input comes from
// outside.
//
// # Safety of outgoing headers
//
// sipgo writes header values and URI headers exactly as given. Every custom header callctx
// sends is therefore checked here first: the name must be an RFC 3261 token and not one of the
// headers that carry the protocol itself ([ForbiddenHeader]); the value must not hold CR, LF,
// NUL or any other control character, also after percent-decoding; and a request carries at
// most [MaxCustomHeaders] custom headers of at most [MaxCustomHeaderChars] characters in all.
// Bad input is refused, never repaired: stripping a CR/LF would silently change what a caller
// asked to send.
package sipbridge

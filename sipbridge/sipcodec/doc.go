// Package sipcodec holds the pure codecs of the SIP bridge: header names and values, the
// User-to-User (UUI) codec, URI headers, the mapping of inbound headers to session variables,
// and the SDP of a parked call: an RFC 3264 answer to the caller's offer. They are functions over strings: they
// never log, never touch the network or sipgo, and return errors that say what was wrong.
// Every parser of outside input here has a table test and a fuzz test.
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
package sipcodec

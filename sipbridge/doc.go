// Package sipbridge is where callctx meets the telephone network: it speaks SIP (through
// github.com/emiago/sipgo, which no other package of ours imports), turns the headers and the
// User-to-User information of an inbound INVITE into session variables, and carries a call's
// context out again in a REFER, a new INVITE or a 302 when the call is transferred.
//
// The codecs it relies on (header names and values, UUI, URI headers, inbound mapping, SDP)
// live in package sipcodec, free of sipgo; every custom header this package sends has passed
// sipcodec's checks first.
package sipbridge

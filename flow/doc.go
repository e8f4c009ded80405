// Package flow runs the call flows of callctx: what happens to a call, step by
// step, and the outbound HTTP requests (automations) it fires on the way.
//
// A flows directory holds YAML files with three sections, triggers,
// automations and flows; [ParseDir] reads it and checks it against [Schema],
// and [Load] (or [Compile]) turns it into a [Snapshot]: triggers compiled by
// package triggers, automations with their templates, and flows as graphs of
// nodes (play, say, input, switch, automation, wait, transfer, hangup). A
// snapshot never changes; a reload makes a new one, and a call keeps the one
// it started with.
//
// The [Engine] drives calls through their flows. The media platform (over
// REST) or the SIP bridge asks it for the next action with [Engine.Next],
// reporting how the previous one ended; a switch node picks the first case
// whose trigger fires, and may wait, without polling, until a session write
// makes one fire. A run's state is stored with each step, so a restart, or
// another node sharing the store, carries on where it stopped.
//
// Automations are queued in the store's outbox in the same write as the step
// or the session change that fires them, then delivered by the engine with
// retries, backoff and an HMAC signature ([Sign], [VerifySignature]): an
// acknowledged write never loses its automations, and a restart delivers what
// was pending. [Simulate] runs a flow offline, for designers.
package flow

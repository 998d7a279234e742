// Package notify builds and delivers completed-session notifications.
//
// When a support session ends and its portal (or the nearest ancestor
// portal with one) has a notification e-mail, the server writes an XML
// Record (schema: docs/notification.xsd) to the store's outbox in the same
// transaction that ends the session: both are committed, or neither is.
// A Sender, running beside the server, delivers the outbox through a
// Backend — SMTP to a configured server, or Dir, which writes each record to
// a file when no server is configured — and deletes each message once the
// backend accepted it.
//
// Delivery is at least once: no queued message is lost across crashes and
// restarts, and a message is sent twice only when the process stops between
// the server's acceptance and the delete that follows it. Every attempt at
// one message carries the same Message-ID (MessageID) so that the receiving
// side can drop that duplicate. See docs/notifications.md.
package notify

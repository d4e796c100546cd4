// Package docs embeds the pages of this directory that the server shows itself: the WebSocket
// protocol (PROTOCOL.md), served at /docs/protocol by internal/docsui. Embedding the file where
// it lives keeps one copy, so the served page can never drift from the one in the repository.
package docs

import _ "embed"

// Protocol is PROTOCOL.md: the WebSocket frames, their order and the delivery guarantees.
//
//go:embed PROTOCOL.md
var Protocol []byte

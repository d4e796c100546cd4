// Package media knows what uploaded bytes are: their content type read from the bytes
// themselves, the dimensions of an image read from its header before anything is decoded,
// images copied without their metadata (a JPEG's EXIF with GPS, XMP, IPTC and comments; a PNG's
// text, EXIF and time chunks; a WebP's EXIF and XMP), and thumbnails. It
// holds no state and knows nothing of chats or storage.
package media

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	_ "image/gif" // registers the decoders image.DecodeConfig and image.Decode use
	_ "image/jpeg"
	_ "image/png"
	"net/http"
	"strings"

	_ "golang.org/x/image/webp"
)

// The image types that get dimensions, thumbnails and inline display.
const (
	PNG  = "image/png"
	JPEG = "image/jpeg"
	GIF  = "image/gif"
	WebP = "image/webp"
)

// SniffLen is how many leading bytes Sniff looks at.
const SniffLen = 512

// Sniff returns the content type of a file from its first bytes (the WHATWG sniffing rules of
// net/http), never from its name or what the client said. Text types keep their charset.
func Sniff(head []byte) string {
	if len(head) == 0 {
		return "application/octet-stream"
	}
	return http.DetectContentType(head)
}

// IsImage reports whether ct is one of the image types we decode.
func IsImage(ct string) bool {
	switch ct {
	case PNG, JPEG, GIF, WebP:
		return true
	}
	return false
}

// ErrNotImage is returned for bytes that claim an image type but whose header cannot be read.
var ErrNotImage = errors.New("not a readable image")

// TooManyPixelsError refuses an image whose header declares more pixels than allowed: decoding
// it would allocate width × height × 4 bytes (a decompression bomb).
type TooManyPixelsError struct {
	Width, Height int
	Max           int64
}

func (e *TooManyPixelsError) Error() string {
	return fmt.Sprintf("the image is %d × %d pixels; at most %d pixels are allowed", e.Width, e.Height, e.Max)
}

// Config reads an image's dimensions from its header (image.DecodeConfig: nothing is decoded)
// and refuses it above maxPixels. head must hold the header: the first bytes of the file.
func Config(head []byte, maxPixels int64) (width, height int, err error) {
	cfg, _, err := image.DecodeConfig(bytes.NewReader(head))
	if err != nil {
		return 0, 0, fmt.Errorf("%w: %v", ErrNotImage, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return 0, 0, fmt.Errorf("%w: it declares %d × %d pixels", ErrNotImage, cfg.Width, cfg.Height)
	}
	if int64(cfg.Width)*int64(cfg.Height) > maxPixels {
		return 0, 0, &TooManyPixelsError{Width: cfg.Width, Height: cfg.Height, Max: maxPixels}
	}
	return cfg.Width, cfg.Height, nil
}

// Inline reports whether a type may be shown in the browser rather than downloaded: the raster
// images only. SVG is not among them: it is a document that can run script.
func Inline(ct string) bool { return IsImage(ct) }

// inert are the types served under their own name; anything else (HTML, XML, SVG, script...)
// is served as application/octet-stream, always as an attachment.
var inert = map[string]bool{
	PNG: true, JPEG: true, GIF: true, WebP: true, "image/bmp": true, "image/x-icon": true,
	"application/pdf": true, "application/zip": true, "application/x-gzip": true, "application/x-rar-compressed": true,
	"application/ogg": true, "application/vnd.ms-fontobject": true,
	"audio/aiff": true, "audio/basic": true, "audio/midi": true, "audio/mpeg": true, "audio/wave": true,
	"video/avi": true, "video/mp4": true, "video/webm": true, "font/ttf": true, "font/otf": true,
	"font/woff": true, "font/woff2": true, "font/collection": true,
}

// ServedType is the Content-Type a file of type ct is served with: its own for inert types and
// plain text, application/octet-stream for everything else.
func ServedType(ct string) string {
	base, _, _ := strings.Cut(ct, ";")
	base = strings.TrimSpace(base)
	switch {
	case inert[base]:
		return base
	case base == "text/plain":
		return ct
	}
	return "application/octet-stream"
}

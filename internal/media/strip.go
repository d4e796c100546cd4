package media

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ErrBadImage is returned by StripPNG, StripWebP and StripGIF for bytes that are not a whole image of
// their type: truncated, or with a broken chunk structure.
var ErrBadImage = errors.New("not a whole image")

var pngSignature = []byte("\x89PNG\r\n\x1a\n")

// pngMetadata are the PNG chunks that say things about the picture rather than draw it: text
// (tEXt, zTXt, iTXt: comments, the software, often the author or a location), EXIF (eXIf:
// camera, GPS) and the time it was last changed (tIME).
var pngMetadata = map[string]bool{"tEXt": true, "zTXt": true, "iTXt": true, "eXIf": true, "tIME": true}

// StripPNG copies a PNG from src to dst without its metadata chunks (pngMetadata); every other
// chunk (the image data, colour information, animation) is copied byte for byte, so the image
// is unchanged. Anything after IEND is dropped. It streams: memory use does not depend on the
// image's size. It returns ErrBadImage for truncated or malformed input.
func StripPNG(dst io.Writer, src io.Reader) error {
	r := bufio.NewReaderSize(src, 32<<10)
	w := bufio.NewWriterSize(dst, 32<<10)
	sig := make([]byte, len(pngSignature))
	if _, err := io.ReadFull(r, sig); err != nil || !bytes.Equal(sig, pngSignature) {
		return fmt.Errorf("%w: no PNG signature", ErrBadImage)
	}
	w.Write(sig)
	var head [8]byte
	for {
		if _, err := io.ReadFull(r, head[:]); err != nil {
			return fmt.Errorf("%w: PNG cut off before IEND", ErrBadImage)
		}
		n := binary.BigEndian.Uint32(head[:4])
		typ := string(head[4:])
		if n > 1<<31-1 {
			return fmt.Errorf("%w: PNG chunk of %d bytes", ErrBadImage, n)
		}
		rest := int64(n) + 4 // the data and its CRC
		if pngMetadata[typ] {
			if _, err := io.CopyN(io.Discard, r, rest); err != nil {
				return fmt.Errorf("%w: PNG cut off in %s", ErrBadImage, typ)
			}
			continue
		}
		w.Write(head[:])
		if _, err := io.CopyN(w, r, rest); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return fmt.Errorf("%w: PNG cut off in %s", ErrBadImage, typ)
			}
			return err
		}
		if typ == "IEND" {
			return w.Flush()
		}
	}
}

// WebP's VP8X flags of the metadata chunks.
const (
	vp8xEXIF = 0x08
	vp8xXMP  = 0x04
)

// StripWebP copies a WebP from src to dst with its metadata blanked: the EXIF and XMP chunks
// keep their place and size but lose their name (they become "JUNK", which decoders skip) and
// their bytes (zeros), and the VP8X header no longer announces them. Keeping the sizes keeps the
// RIFF header right without reading ahead, so the file streams through; the pixels, the colour
// profile and the animation are copied byte for byte. Anything after the RIFF's end is dropped.
// It returns ErrBadImage for truncated or malformed input.
func StripWebP(dst io.Writer, src io.Reader) error {
	r := bufio.NewReaderSize(src, 32<<10)
	w := bufio.NewWriterSize(dst, 32<<10)
	var head [12]byte
	if _, err := io.ReadFull(r, head[:]); err != nil || string(head[:4]) != "RIFF" || string(head[8:]) != "WEBP" {
		return fmt.Errorf("%w: no WebP header", ErrBadImage)
	}
	w.Write(head[:])
	left := int64(binary.LittleEndian.Uint32(head[4:8])) - 4
	var ch [8]byte
	for left > 0 {
		if left < 8 {
			return fmt.Errorf("%w: WebP chunk header past the RIFF's end", ErrBadImage)
		}
		if _, err := io.ReadFull(r, ch[:]); err != nil {
			return fmt.Errorf("%w: WebP cut off", ErrBadImage)
		}
		fcc := string(ch[:4])
		size := int64(binary.LittleEndian.Uint32(ch[4:]))
		padded := size + size&1
		if 8+padded > left {
			return fmt.Errorf("%w: WebP chunk %q past the RIFF's end", ErrBadImage, fcc)
		}
		left -= 8 + padded
		var err error
		switch fcc {
		case "EXIF", "XMP ":
			w.WriteString("JUNK")
			w.Write(ch[4:])
			if _, err = io.CopyN(io.Discard, r, padded); err == nil {
				_, err = io.CopyN(w, zeros{}, padded)
			}
		case "VP8X":
			w.Write(ch[:])
			if padded > 64 {
				return fmt.Errorf("%w: a VP8X chunk of %d bytes", ErrBadImage, size)
			}
			body := make([]byte, padded)
			if _, err = io.ReadFull(r, body); err == nil && len(body) > 0 {
				body[0] &^= vp8xEXIF | vp8xXMP
				_, err = w.Write(body)
			}
		default:
			w.Write(ch[:])
			_, err = io.CopyN(w, r, padded)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("%w: WebP cut off in %q", ErrBadImage, fcc)
		}
		if err != nil {
			return err
		}
	}
	return w.Flush()
}

// zeros reads as an endless run of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

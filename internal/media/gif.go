package media

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// GIF block introducers and extension labels.
const (
	gifExtension   = 0x21
	gifImage       = 0x2C
	gifTrailer     = 0x3B
	gifComment     = 0xFE
	gifApplication = 0xFF
)

// StripGIF copies a GIF from src to dst without its comment extensions and without XMP
// (an application extension named "XMP Data", where editors put authors, places and history);
// the frames, their timing, the palettes and the looping (NETSCAPE2.0) are copied byte for
// byte, so the picture and the animation are unchanged. Anything after the trailer is dropped.
// It streams, and returns ErrBadImage for truncated or malformed input.
func StripGIF(dst io.Writer, src io.Reader) error {
	r := bufio.NewReaderSize(src, 32<<10)
	w := bufio.NewWriterSize(dst, 32<<10)
	var head [13]byte // signature and version, then the logical screen descriptor
	if _, err := io.ReadFull(r, head[:]); err != nil || (string(head[:6]) != "GIF87a" && string(head[:6]) != "GIF89a") {
		return fmt.Errorf("%w: no GIF header", ErrBadImage)
	}
	w.Write(head[:])
	if err := copyColorTable(w, r, head[10]); err != nil {
		return err
	}
	for {
		b, err := r.ReadByte()
		if err != nil {
			return fmt.Errorf("%w: GIF cut off before its trailer", ErrBadImage)
		}
		switch b {
		case gifTrailer:
			w.WriteByte(b)
			return w.Flush()
		case gifImage:
			var desc [10]byte // left, top, width, height, flags, then the LZW code size
			if _, err := io.ReadFull(r, desc[:9]); err != nil {
				return fmt.Errorf("%w: GIF cut off in an image descriptor", ErrBadImage)
			}
			w.WriteByte(b)
			w.Write(desc[:9])
			if err := copyColorTable(w, r, desc[8]); err != nil {
				return err
			}
			if desc[9], err = r.ReadByte(); err != nil {
				return fmt.Errorf("%w: GIF cut off in an image", ErrBadImage)
			}
			w.WriteByte(desc[9])
			if err := gifSubBlocks(w, r); err != nil {
				return err
			}
		case gifExtension:
			label, err := r.ReadByte()
			if err != nil {
				return fmt.Errorf("%w: GIF cut off in an extension", ErrBadImage)
			}
			drop := label == gifComment
			var first []byte
			if label == gifApplication {
				if first, err = gifSubBlock(r); err != nil {
					return err
				}
				drop = bytes.HasPrefix(first[1:], []byte("XMP Data"))
			}
			out := io.Writer(w)
			if drop {
				out = io.Discard
			} else {
				w.WriteByte(b)
				w.WriteByte(label)
				w.Write(first)
			}
			if len(first) == 1 { // the application extension ended at its first block
				continue
			}
			if err := gifSubBlocks(out, r); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%w: unknown GIF block 0x%02X", ErrBadImage, b)
		}
	}
}

// copyColorTable copies the colour table that flags (a screen or image descriptor's packed
// byte) announce, if any.
func copyColorTable(w io.Writer, r *bufio.Reader, flags byte) error {
	if flags&0x80 == 0 {
		return nil
	}
	n := int64(3) << (flags&0x07 + 1)
	if _, err := io.CopyN(w, r, n); err != nil {
		return fmt.Errorf("%w: GIF cut off in a colour table", ErrBadImage)
	}
	return nil
}

// gifSubBlock reads one data sub-block: its size byte and its bytes, returned together.
func gifSubBlock(r *bufio.Reader) ([]byte, error) {
	n, err := r.ReadByte()
	if err != nil {
		return nil, fmt.Errorf("%w: GIF cut off in a data block", ErrBadImage)
	}
	b := make([]byte, 1+int(n))
	b[0] = n
	if _, err := io.ReadFull(r, b[1:]); err != nil {
		return nil, fmt.Errorf("%w: GIF cut off in a data block", ErrBadImage)
	}
	return b, nil
}

// gifSubBlocks copies data sub-blocks up to and including the empty one that ends them.
func gifSubBlocks(w io.Writer, r *bufio.Reader) error {
	for {
		n, err := r.ReadByte()
		if err != nil {
			return fmt.Errorf("%w: GIF cut off in a data block", ErrBadImage)
		}
		if _, err := w.Write([]byte{n}); err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		if _, err := io.CopyN(w, r, int64(n)); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return fmt.Errorf("%w: GIF cut off in a data block", ErrBadImage)
			}
			return err
		}
	}
}

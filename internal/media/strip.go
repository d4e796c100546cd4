package media

import (
	"bufio"
	"bytes"
	"compress/zlib"
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
// image's size. It returns ErrBadImage for truncated or malformed input, including image data
// (IDAT) that does not hold every pixel the header announces, though its chunks are whole: it
// inflates the data as it goes by and counts the bytes.
func StripPNG(dst io.Writer, src io.Reader) (err error) {
	r := bufio.NewReaderSize(src, 32<<10)
	w := bufio.NewWriterSize(dst, 32<<10)
	sig := make([]byte, len(pngSignature))
	if _, err := io.ReadFull(r, sig); err != nil || !bytes.Equal(sig, pngSignature) {
		return fmt.Errorf("%w: no PNG signature", ErrBadImage)
	}
	w.Write(sig)
	var head [8]byte
	var want uint64 // the bytes the image data inflates to, from IHDR
	var pixels *inflateCount
	defer func() {
		if pixels != nil {
			pixels.stop()
		}
	}()
	for first := true; ; first = false {
		if _, err := io.ReadFull(r, head[:]); err != nil {
			return fmt.Errorf("%w: PNG cut off before IEND", ErrBadImage)
		}
		n := binary.BigEndian.Uint32(head[:4])
		typ := string(head[4:])
		if n > 1<<31-1 {
			return fmt.Errorf("%w: PNG chunk of %d bytes", ErrBadImage, n)
		}
		if first != (typ == "IHDR") || (typ == "IHDR" && n != 13) {
			return fmt.Errorf("%w: PNG without its IHDR first", ErrBadImage)
		}
		rest := int64(n) + 4 // the data and its CRC
		if pngMetadata[typ] {
			if _, err := io.CopyN(io.Discard, r, rest); err != nil {
				return fmt.Errorf("%w: PNG cut off in %s", ErrBadImage, typ)
			}
			continue
		}
		w.Write(head[:])
		var data io.Writer = w
		switch typ {
		case "IHDR":
			ihdr, err := r.Peek(13)
			if err != nil {
				return fmt.Errorf("%w: PNG cut off in IHDR", ErrBadImage)
			}
			if want, err = pngDataSize(ihdr); err != nil {
				return err
			}
		case "IDAT":
			if pixels == nil {
				pixels = startInflateCount()
			}
			data = io.MultiWriter(w, pixels)
		}
		if _, err := io.CopyN(data, r, int64(n)); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return fmt.Errorf("%w: PNG cut off in %s", ErrBadImage, typ)
			}
			return err
		}
		if _, err := io.CopyN(w, r, 4); err != nil {
			return fmt.Errorf("%w: PNG cut off in %s", ErrBadImage, typ)
		}
		if typ == "IEND" {
			if pixels == nil {
				return fmt.Errorf("%w: PNG without image data", ErrBadImage)
			}
			got, err := pixels.result()
			if err != nil {
				return fmt.Errorf("%w: PNG image data: %v", ErrBadImage, err)
			}
			if got < want {
				return fmt.Errorf("%w: PNG image data holds %d of its %d bytes", ErrBadImage, got, want)
			}
			return w.Flush()
		}
	}
}

// pngDataSize is how many bytes a PNG's image data inflates to, from its IHDR chunk's data:
// each row of each pass (seven passes when interlaced, Adam7) is a filter byte and its pixels.
func pngDataSize(ihdr []byte) (uint64, error) {
	width, height := uint64(binary.BigEndian.Uint32(ihdr[0:4])), uint64(binary.BigEndian.Uint32(ihdr[4:8]))
	depth, colour, interlace := uint64(ihdr[8]), ihdr[9], ihdr[12]
	channels := map[byte]uint64{0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[colour]
	if width == 0 || height == 0 || width > 1<<31-1 || height > 1<<31-1 || channels == 0 ||
		(depth != 1 && depth != 2 && depth != 4 && depth != 8 && depth != 16) || interlace > 1 {
		return 0, fmt.Errorf("%w: PNG header of %d × %d pixels, depth %d, colour type %d, interlace %d", ErrBadImage,
			width, height, depth, colour, interlace)
	}
	bits := channels * depth
	rows := func(w, h uint64) uint64 {
		if w == 0 || h == 0 {
			return 0
		}
		return h * (1 + (w*bits+7)/8) // at most 2^31 × (1 + 2^34): no overflow
	}
	if interlace == 0 {
		return rows(width, height), nil
	}
	// Adam7: each pass's first column and row, and its steps.
	var total uint64
	for _, p := range [7][4]uint64{{0, 0, 8, 8}, {4, 0, 8, 8}, {0, 4, 4, 8}, {2, 0, 4, 4}, {0, 2, 2, 4}, {1, 0, 2, 2}, {0, 1, 1, 2}} {
		x0, y0, dx, dy := p[0], p[1], p[2], p[3]
		var w, h uint64
		if width > x0 {
			w = (width - x0 + dx - 1) / dx
		}
		if height > y0 {
			h = (height - y0 + dy - 1) / dy
		}
		total += rows(w, h)
	}
	return total, nil
}

// inflateCount inflates the zlib stream written to it, on a goroutine of its own, and counts
// the bytes it gives.
type inflateCount struct {
	pw   *io.PipeWriter
	done chan struct{}
	n    uint64
	err  error
}

func startInflateCount() *inflateCount {
	pr, pw := io.Pipe()
	c := &inflateCount{pw: pw, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		zr, err := zlib.NewReader(pr)
		if err == nil {
			var n int64
			n, err = io.Copy(io.Discard, zr)
			c.n = uint64(n)
		}
		c.err = err
		io.Copy(io.Discard, pr) // data after the stream's end, if any: the writer must not block
	}()
	return c
}

func (c *inflateCount) Write(p []byte) (int, error) {
	c.pw.Write(p) // the reader drains to the end, so this never blocks for good
	return len(p), nil
}

// result ends the input and tells how many bytes the stream inflated to, or what was wrong
// with it (io.ErrUnexpectedEOF: cut off).
func (c *inflateCount) result() (uint64, error) {
	c.pw.Close()
	<-c.done
	return c.n, c.err
}

// stop ends the goroutine if result was not called.
func (c *inflateCount) stop() {
	c.pw.CloseWithError(io.ErrClosedPipe)
	<-c.done
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

package media

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ErrBadJPEG is returned by StripJPEG for bytes that are not a whole JPEG: truncated, or with a
// broken segment structure.
var ErrBadJPEG = errors.New("not a whole JPEG image")

// JPEG markers.
const (
	mSOI  = 0xD8
	mEOI  = 0xD9
	mSOS  = 0xDA
	mAPP0 = 0xE0
	mAPP1 = 0xE1
	mAPP2 = 0xE2
	mAPPE = 0xEE
	mAPPF = 0xEF
	mCOM  = 0xFE
	mTEM  = 0x01
	mRST0 = 0xD0
	mRST7 = 0xD7
)

// StripJPEG copies a JPEG from src to dst without its metadata: EXIF (camera, time, GPS), XMP,
// IPTC, comments, embedded previews and anything after the end of the image (the second
// pictures of MPO files, vendor trailers). It keeps what display needs: the JFIF and Adobe
// segments, the ICC colour profile and every coding segment, and the EXIF orientation, which it
// writes back as a minimal EXIF segment that holds nothing else, so photos stay upright. It
// streams: memory use does not depend on the image's size. It returns the orientation (1-8; 1
// when there was none) and ErrBadJPEG for truncated or malformed input.
func StripJPEG(dst io.Writer, src io.Reader) (orientation int, err error) {
	r := bufio.NewReaderSize(src, 32<<10)
	w := bufio.NewWriterSize(dst, 32<<10)
	orientation = 1
	var soi [2]byte
	if _, err := io.ReadFull(r, soi[:]); err != nil || soi != [2]byte{0xFF, mSOI} {
		return 0, fmt.Errorf("%w: no start of image", ErrBadJPEG)
	}
	w.Write(soi[:])
	wroteOrientation := false
	marker, err := nextMarker(r)
	for err == nil {
		switch {
		case marker == mEOI:
			w.Write([]byte{0xFF, mEOI})
			return orientation, w.Flush()
		case marker == mTEM || (marker >= mRST0 && marker <= mRST7):
			w.Write([]byte{0xFF, marker})
			marker, err = nextMarker(r)
			continue
		}
		var seg []byte
		if seg, err = readSegment(r); err != nil {
			break
		}
		keep := true
		switch {
		case marker == mAPP1:
			if o := exifOrientation(seg); o > 1 {
				orientation = o
			}
			keep = false
		case marker == mAPP2:
			keep = bytes.HasPrefix(seg, []byte("ICC_PROFILE\x00"))
		case marker == mAPP0 || marker == mAPPE:
		case marker > mAPP0 && marker <= mAPPF, marker == mCOM:
			keep = false
		}
		if !keep {
			marker, err = nextMarker(r)
			continue
		}
		if marker != mAPP0 && marker != mAPP2 && marker != mAPPE && !wroteOrientation {
			// The first coding segment: every APPn of the header has been seen.
			wroteOrientation = true
			if orientation > 1 {
				w.Write(orientationSegment(orientation))
			}
		}
		w.Write([]byte{0xFF, marker})
		binary.Write(w, binary.BigEndian, uint16(len(seg)+2))
		w.Write(seg)
		if marker == mSOS {
			marker, err = copyScan(w, r)
			continue
		}
		marker, err = nextMarker(r)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return 0, fmt.Errorf("%w: it ends before its end-of-image marker", ErrBadJPEG)
	}
	return 0, err
}

// nextMarker reads the next marker outside entropy-coded data, skipping fill bytes.
func nextMarker(r *bufio.Reader) (byte, error) {
	b, err := r.ReadByte()
	if err != nil {
		return 0, err
	}
	if b != 0xFF {
		return 0, fmt.Errorf("%w: found 0x%02x where a marker belongs", ErrBadJPEG, b)
	}
	for b == 0xFF {
		if b, err = r.ReadByte(); err != nil {
			return 0, err
		}
	}
	if b == 0 {
		return 0, fmt.Errorf("%w: an empty marker", ErrBadJPEG)
	}
	return b, nil
}

// readSegment reads a marker segment's payload (after its length).
func readSegment(r *bufio.Reader) ([]byte, error) {
	var n uint16
	if err := binary.Read(r, binary.BigEndian, &n); err != nil {
		return nil, err
	}
	if n < 2 {
		return nil, fmt.Errorf("%w: a segment of length %d", ErrBadJPEG, n)
	}
	seg := make([]byte, n-2)
	_, err := io.ReadFull(r, seg)
	return seg, err
}

// copyScan copies entropy-coded data up to the next marker that is not a restart or a stuffed
// zero, and returns that marker.
func copyScan(w *bufio.Writer, r *bufio.Reader) (byte, error) {
	for {
		chunk, err := r.ReadSlice(0xFF)
		if errors.Is(err, bufio.ErrBufferFull) {
			w.Write(chunk)
			continue
		}
		if err != nil {
			return 0, err
		}
		w.Write(chunk[:len(chunk)-1])
		b, err := r.ReadByte()
		for err == nil && b == 0xFF { // fill bytes
			b, err = r.ReadByte()
		}
		if err != nil {
			return 0, err
		}
		if b == 0 || (b >= mRST0 && b <= mRST7) {
			w.Write([]byte{0xFF, b})
			continue
		}
		return b, nil
	}
}

// exifOrientation reads tag 0x0112 of IFD0 from an APP1 payload; 0 when absent or unreadable.
func exifOrientation(seg []byte) int {
	if !bytes.HasPrefix(seg, []byte("Exif\x00\x00")) {
		return 0
	}
	t := seg[6:]
	if len(t) < 8 {
		return 0
	}
	var bo binary.ByteOrder
	switch string(t[:2]) {
	case "II":
		bo = binary.LittleEndian
	case "MM":
		bo = binary.BigEndian
	default:
		return 0
	}
	off := int(bo.Uint32(t[4:8]))
	if off < 8 || off+2 > len(t) {
		return 0
	}
	n := int(bo.Uint16(t[off:]))
	for i := range n {
		e := off + 2 + 12*i
		if e+12 > len(t) {
			return 0
		}
		if bo.Uint16(t[e:]) == 0x0112 && bo.Uint16(t[e+2:]) == 3 {
			if v := int(bo.Uint16(t[e+8:])); v >= 1 && v <= 8 {
				return v
			}
			return 0
		}
	}
	return 0
}

// orientationSegment is an APP1 EXIF segment holding only the orientation tag.
func orientationSegment(o int) []byte {
	b := []byte{0xFF, mAPP1, 0, 34}
	b = append(b, "Exif\x00\x00"...)
	b = append(b, "MM\x00\x2A\x00\x00\x00\x08"...) // big-endian TIFF header, IFD0 at 8
	b = append(b, 0, 1)                            // one entry
	b = append(b, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, byte(o), 0, 0)
	b = append(b, 0, 0, 0, 0) // no next IFD
	return b
}

// Rotated reports whether an EXIF orientation swaps width and height.
func Rotated(orientation int) bool { return orientation >= 5 && orientation <= 8 }

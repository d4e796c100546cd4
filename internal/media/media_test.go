package media_test

import (
	"bytes"
	"compress/flate"
	"compress/zlib"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"runtime"
	"testing"

	"github.com/wschat/chat/internal/media"
	"golang.org/x/image/webp"
)

// exifSegment builds an APP1 EXIF segment (little-endian) with an orientation and a GPS IFD
// pointer and a camera make, as phones write them.
func exifSegment(orientation uint16) []byte {
	var t bytes.Buffer
	t.WriteString("II*\x00")
	binary.Write(&t, binary.LittleEndian, uint32(8))
	binary.Write(&t, binary.LittleEndian, uint16(3)) // entries
	entry := func(tag, typ uint16, count, value uint32) {
		binary.Write(&t, binary.LittleEndian, tag)
		binary.Write(&t, binary.LittleEndian, typ)
		binary.Write(&t, binary.LittleEndian, count)
		binary.Write(&t, binary.LittleEndian, value)
	}
	entry(0x010F, 2, 4, 0x00414141)          // Make "AAA"
	entry(0x0112, 3, 1, uint32(orientation)) // Orientation
	entry(0x8825, 4, 1, 50)                  // GPS IFD at 50
	binary.Write(&t, binary.LittleEndian, uint32(0))
	for t.Len() < 50 {
		t.WriteByte(0)
	}
	t.WriteString("GPSLatitude=48.8584N GPSLongitude=2.2945E") // what must not leak
	payload := append([]byte("Exif\x00\x00"), t.Bytes()...)
	seg := []byte{0xFF, 0xE1, 0, 0}
	binary.BigEndian.PutUint16(seg[2:], uint16(len(payload)+2))
	return append(seg, payload...)
}

// photo is a w × h JPEG whose left half is red and right half blue, with EXIF (orientation,
// GPS), a comment and trailing bytes after its end.
func photo(t *testing.T, w, h int, orientation uint16) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			c := color.RGBA{255, 0, 0, 255}
			if x >= w/2 {
				c = color.RGBA{0, 0, 255, 255}
			}
			img.SetRGBA(x, y, c)
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	out := append([]byte{}, b[:2]...) // SOI
	out = append(out, exifSegment(orientation)...)
	out = append(out, 0xFF, 0xFE, 0, 12)
	out = append(out, "secret note"...)[:len(out)+10]
	out = append(out, b[2:]...)
	return append(out, "TRAILER with GPS"...)
}

func TestStripJPEG(t *testing.T) {
	in := photo(t, 64, 32, 6)
	var out bytes.Buffer
	o, err := media.StripJPEG(&out, bytes.NewReader(in))
	if err != nil {
		t.Fatalf("strip: %v", err)
	}
	if o != 6 {
		t.Errorf("orientation: got %d, want 6", o)
	}
	for _, leak := range []string{"GPS", "secret", "AAA", "TRAILER"} {
		if bytes.Contains(out.Bytes(), []byte(leak)) {
			t.Errorf("the stripped JPEG still holds %q", leak)
		}
	}
	img, err := jpeg.Decode(bytes.NewReader(out.Bytes()))
	if err != nil {
		t.Fatalf("the stripped JPEG does not decode: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 64 || b.Dy() != 32 {
		t.Errorf("decoded %v, want 64 × 32", b)
	}
	// The orientation survives in a minimal EXIF that a second pass reads back.
	var again bytes.Buffer
	if o, err := media.StripJPEG(&again, bytes.NewReader(out.Bytes())); err != nil || o != 6 {
		t.Errorf("second pass: orientation %d, %v; want 6", o, err)
	}
	if !bytes.Equal(again.Bytes(), out.Bytes()) {
		t.Errorf("stripping is not idempotent")
	}
}

func TestStripJPEGRefusesBrokenInput(t *testing.T) {
	whole := photo(t, 64, 32, 1)
	end := bytes.LastIndex(whole, []byte{0xFF, 0xD9})
	for name, in := range map[string][]byte{
		"truncated in the scan":   whole[:end-20],
		"truncated in the header": whole[:30],
		"not a JPEG":              []byte("GIF89a....."),
		"empty":                   nil,
	} {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			if _, err := media.StripJPEG(&out, bytes.NewReader(in)); !errors.Is(err, media.ErrBadJPEG) {
				t.Errorf("got %v, want ErrBadJPEG", err)
			}
		})
	}
}

// bombPNG is a valid PNG header declaring w × h pixels, followed by nothing decodable.
func bombPNG(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	binary.Write(&b, binary.BigEndian, uint32(13))
	start := b.Len()
	b.WriteString("IHDR")
	binary.Write(&b, binary.BigEndian, w)
	binary.Write(&b, binary.BigEndian, h)
	b.Write([]byte{8, 6, 0, 0, 0})
	binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(b.Bytes()[start:]))
	return b.Bytes()
}

func TestConfigRefusesBombs(t *testing.T) {
	_, _, err := media.Config(bombPNG(100_000, 100_000), 40_000_000)
	var tm *media.TooManyPixelsError
	if !errors.As(err, &tm) || tm.Width != 100_000 {
		t.Errorf("got %v, want TooManyPixelsError for 100000 × 100000", err)
	}
	if _, _, err := media.Config([]byte("\x89PNG\r\n\x1a\nnot really"), 40_000_000); !errors.Is(err, media.ErrNotImage) {
		t.Errorf("a broken header: got %v, want ErrNotImage", err)
	}
}

func TestThumbnail(t *testing.T) {
	var stripped bytes.Buffer
	o, err := media.StripJPEG(&stripped, bytes.NewReader(photo(t, 800, 400, 6)))
	if err != nil {
		t.Fatal(err)
	}
	th, err := media.Thumbnail(bytes.NewReader(stripped.Bytes()), o, 320, 40_000_000)
	if err != nil {
		t.Fatal(err)
	}
	// Orientation 6: turned 90° clockwise, so 800 × 400 becomes 160 × 320 with red on top.
	if th.ContentType != media.JPEG || th.Width != 160 || th.Height != 320 {
		t.Fatalf("got %s %d × %d, want image/jpeg 160 × 320", th.ContentType, th.Width, th.Height)
	}
	img, err := jpeg.Decode(bytes.NewReader(th.Data))
	if err != nil {
		t.Fatal(err)
	}
	top, bottom := img.At(80, 20), img.At(80, 300)
	if r, _, b, _ := top.RGBA(); r < b {
		t.Errorf("top of the upright thumbnail is %v, want red", top)
	}
	if r, _, b, _ := bottom.RGBA(); b < r {
		t.Errorf("bottom of the upright thumbnail is %v, want blue", bottom)
	}

	// Transparency keeps a PNG; small images are not enlarged.
	small := image.NewNRGBA(image.Rect(0, 0, 40, 30))
	var pb bytes.Buffer
	png.Encode(&pb, small)
	th, err = media.Thumbnail(&pb, 1, 320, 40_000_000)
	if err != nil || th.ContentType != media.PNG || th.Width != 40 || th.Height != 30 {
		t.Errorf("transparent 40 × 30: got %s %d × %d, %v; want image/png 40 × 30", th.ContentType, th.Width, th.Height, err)
	}

	if _, err := media.Thumbnail(bytes.NewReader(bombPNG(100_000, 100_000)), 1, 320, 40_000_000); !errors.As(err, new(*media.TooManyPixelsError)) {
		t.Errorf("a bomb: got %v, want TooManyPixelsError before decoding", err)
	}
}

func TestServedType(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"image/png", "image/png"},
		{"text/html; charset=utf-8", "application/octet-stream"},
		{"text/xml; charset=utf-8", "application/octet-stream"},
		{"image/svg+xml", "application/octet-stream"},
		{"text/plain; charset=utf-16be", "text/plain; charset=utf-16be"},
		{"application/pdf", "application/pdf"},
		{"application/javascript", "application/octet-stream"},
	} {
		if got := media.ServedType(c.in); got != c.want {
			t.Errorf("ServedType(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// pngChunk is one PNG chunk with its CRC.
func pngChunk(typ string, data []byte) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.BigEndian, uint32(len(data)))
	b.WriteString(typ)
	b.Write(data)
	binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(append([]byte(typ), data...)))
	return b.Bytes()
}

// pngWithMetadata is a PNG with text, EXIF and time chunks after its header, and a trailer.
func pngWithMetadata(t *testing.T) (withMeta, plain []byte) {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 20, 10))
	for i := range img.Pix {
		img.Pix[i] = byte(i * 7)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	plain = buf.Bytes()
	ihdrEnd := 8 + 8 + 13 + 4
	var b bytes.Buffer
	b.Write(plain[:ihdrEnd])
	b.Write(pngChunk("tEXt", []byte("Author\x00secret author")))
	b.Write(pngChunk("eXIf", []byte("MM\x00*GPS 48.85N 2.35E")))
	b.Write(pngChunk("tIME", []byte{7, 234, 12, 2, 10, 0, 0}))
	b.Write(pngChunk("iTXt", []byte("Comment\x00\x00\x00\x00\x00secret comment")))
	b.Write(plain[ihdrEnd:])
	b.WriteString("TRAILER with GPS")
	return b.Bytes(), plain
}

func TestStripPNG(t *testing.T) {
	in, plain := pngWithMetadata(t)
	var out bytes.Buffer
	if err := media.StripPNG(&out, bytes.NewReader(in)); err != nil {
		t.Fatalf("strip: %v", err)
	}
	if !bytes.Equal(out.Bytes(), plain) {
		t.Errorf("stripped: %d bytes, want the %d of the PNG without its metadata", out.Len(), len(plain))
	}
	for _, leak := range []string{"secret", "GPS", "TRAILER", "tIME"} {
		if bytes.Contains(out.Bytes(), []byte(leak)) {
			t.Errorf("the stripped PNG still holds %q", leak)
		}
	}
	end := bytes.Index(plain, []byte("IEND"))
	for name, bad := range map[string][]byte{
		"truncated in the data": plain[:end-10],
		"no IEND":               plain[:end-4],
		"not a PNG":             []byte("GIF89a....."),
		"empty":                 nil,
		// Whole chunks with correct CRCs, but not every pixel: the data cut in half, and a
		// whole zlib stream of the first rows only.
		"half the image data":    pngFrom(plain[:8+8+13+4], idatOf(t, plain)[:len(idatOf(t, plain))/2]),
		"too few rows of pixels": pngFrom(plain[:8+8+13+4], deflate(t, make([]byte, 3*(1+20*4)))),
		"no image data":          pngFrom(plain[:8+8+13+4], nil),
	} {
		if err := media.StripPNG(io.Discard, bytes.NewReader(bad)); !errors.Is(err, media.ErrBadImage) {
			t.Errorf("%s: got %v, want ErrBadImage", name, err)
		}
	}
}

// idatOf is the image data of a PNG: its IDAT chunks' data, joined.
func idatOf(t *testing.T, p []byte) []byte {
	t.Helper()
	var out []byte
	for i := 8; i+8 <= len(p); {
		n := int(binary.BigEndian.Uint32(p[i:]))
		if string(p[i+4:i+8]) == "IDAT" {
			out = append(out, p[i+8:i+8+n]...)
		}
		i += 12 + n
	}
	if len(out) == 0 {
		t.Fatal("no IDAT")
	}
	return out
}

// pngFrom is a PNG of a signature and IHDR (head), one IDAT chunk of data (none if nil), IEND.
func pngFrom(head, data []byte) []byte {
	out := append([]byte(nil), head...)
	if data != nil {
		out = append(out, pngChunk("IDAT", data)...)
	}
	return append(out, pngChunk("IEND", nil)...)
}

func deflate(t *testing.T, raw []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := zlib.NewWriter(&b)
	zw.Write(raw)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// blankGrayPNG is a PNG of w × h black 8-bit grey pixels, made without encoding them one by
// one (image/png's encoder took two thirds of this package's CPU under the race detector for
// TestThumbnailOfALongImage's ten million pixels). Its scanlines, a filter byte and the pixels,
// are n zero bytes in all. Their deflate stream is a compressed stretch of zeros repeated: each
// copy is made by a fresh compressor and ends with a sync flush, so it refers back only within
// itself and ends on a byte; then the rest, and a final empty block. The Adler-32 of n zeros is
// n mod 65521 in its high half and 1 in its low.
func blankGrayPNG(t *testing.T, w, h int) []byte {
	t.Helper()
	n := h * (w + 1)
	const stretch = 1 << 16
	zeros := func(k int) []byte {
		var b bytes.Buffer
		fw, err := flate.NewWriter(&b, flate.BestCompression)
		if err != nil {
			t.Fatal(err)
		}
		fw.Write(make([]byte, k))
		if err := fw.Flush(); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	var z bytes.Buffer
	z.Write([]byte{0x78, 0xda}) // zlib: deflate with a 32 KiB window, best compression
	z.Write(bytes.Repeat(zeros(stretch), n/stretch))
	if n%stretch > 0 {
		z.Write(zeros(n % stretch))
	}
	z.Write([]byte{0x03, 0x00}) // the final block: fixed codes, end of block
	binary.Write(&z, binary.BigEndian, uint32(n%65521)<<16|1)

	var ihdr bytes.Buffer
	binary.Write(&ihdr, binary.BigEndian, uint32(w))
	binary.Write(&ihdr, binary.BigEndian, uint32(h))
	ihdr.Write([]byte{8, 0, 0, 0, 0}) // 8 bits, grey, deflate, no filter method, not interlaced
	head := append([]byte("\x89PNG\r\n\x1a\n"), pngChunk("IHDR", ihdr.Bytes())...)
	return pngFrom(head, z.Bytes())
}

// Every kind of PNG that holds all its pixels passes StripPNG whole, whatever its colour type,
// depth and interlacing; Go's own decoder is the reference for which are whole.
func TestStripPNGKeepsWholeImages(t *testing.T) {
	gray16 := image.NewGray16(image.Rect(0, 0, 13, 7))
	rgba64 := image.NewNRGBA64(image.Rect(0, 0, 5, 9))
	bw := image.NewPaletted(image.Rect(0, 0, 17, 3), color.Palette{color.Black, color.White})
	four := image.NewPaletted(image.Rect(0, 0, 9, 9), color.Palette{color.Black, color.White, color.Gray{Y: 80}, color.Gray{Y: 160}})
	gray := image.NewGray(image.Rect(0, 0, 1, 1))
	cases := map[string][]byte{}
	for name, img := range map[string]image.Image{"gray16": gray16, "rgba64": rgba64, "1-bit palette": bw, "2-bit palette": four, "1 × 1 gray": gray} {
		var b bytes.Buffer
		if err := png.Encode(&b, img); err != nil {
			t.Fatal(err)
		}
		cases[name] = b.Bytes()
	}
	// Interlaced (Adam7; Go's encoder writes none): RGB 8-bit of odd sizes, small enough that
	// some passes are empty. The rows of each pass are a filter byte (0) and their pixels.
	for _, size := range [][2]int{{1, 1}, {3, 2}, {7, 5}, {10, 9}, {33, 17}} {
		w, h := size[0], size[1]
		var raw []byte
		for _, p := range [7][4]int{{0, 0, 8, 8}, {4, 0, 8, 8}, {0, 4, 4, 8}, {2, 0, 4, 4}, {0, 2, 2, 4}, {1, 0, 2, 2}, {0, 1, 1, 2}} {
			pw, ph := (w-p[0]+p[2]-1)/p[2], (h-p[1]+p[3]-1)/p[3]
			if pw <= 0 || ph <= 0 {
				continue
			}
			for range ph {
				raw = append(raw, 0)
				raw = append(raw, bytes.Repeat([]byte{200, 100, 50}, pw)...)
			}
		}
		ihdr := binary.BigEndian.AppendUint32(nil, uint32(w))
		ihdr = binary.BigEndian.AppendUint32(ihdr, uint32(h))
		ihdr = append(ihdr, 8, 2, 0, 0, 1)
		head := append([]byte("\x89PNG\r\n\x1a\n"), pngChunk("IHDR", ihdr)...)
		cases[fmt.Sprintf("interlaced %d × %d", w, h)] = pngFrom(head, deflate(t, raw))
		// The same image a byte short is not whole.
		if err := media.StripPNG(io.Discard, bytes.NewReader(pngFrom(head, deflate(t, raw[:len(raw)-1])))); !errors.Is(err, media.ErrBadImage) {
			t.Errorf("interlaced %d × %d a byte short: got %v, want ErrBadImage", w, h, err)
		}
	}
	for name, p := range cases {
		if _, err := png.Decode(bytes.NewReader(p)); err != nil {
			t.Fatalf("%s: the test's PNG does not decode: %v", name, err)
		}
		var out bytes.Buffer
		if err := media.StripPNG(&out, bytes.NewReader(p)); err != nil || !bytes.Equal(out.Bytes(), p) {
			t.Errorf("%s: StripPNG gave %d bytes, %v; want the %d bytes as they were", name, out.Len(), err, len(p))
		}
	}
}

// webpWithMetadata is a 1 × 1 lossless WebP in the extended format, with EXIF and XMP chunks.
func webpWithMetadata(t *testing.T) []byte {
	t.Helper()
	simple, err := base64.StdEncoding.DecodeString("UklGRhoAAABXRUJQVlA4TA0AAAAvAAAAEAcQERGIiP4HAA==")
	if err != nil {
		t.Fatal(err)
	}
	vp8l := simple[12:]
	chunk := func(fcc string, data []byte) []byte {
		b := append([]byte(fcc), binary.LittleEndian.AppendUint32(nil, uint32(len(data)))...)
		b = append(b, data...)
		if len(data)%2 == 1 {
			b = append(b, 0)
		}
		return b
	}
	body := []byte("WEBP")
	body = append(body, chunk("VP8X", []byte{0x10 | 0x08 | 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0})...)
	body = append(body, vp8l...)
	body = append(body, chunk("EXIF", []byte("MM\x00*GPS 48.85N 2.35E secret"))...)
	body = append(body, chunk("XMP ", []byte("<x:xmpmeta>secret author</x:xmpmeta>"))...)
	out := append([]byte("RIFF"), binary.LittleEndian.AppendUint32(nil, uint32(len(body)))...)
	return append(append(out, body...), "TRAILER"...)
}

func TestStripWebP(t *testing.T) {
	in := webpWithMetadata(t)
	if _, err := webp.Decode(bytes.NewReader(in)); err != nil {
		t.Fatalf("the test WebP does not decode: %v", err)
	}
	var out bytes.Buffer
	if err := media.StripWebP(&out, bytes.NewReader(in)); err != nil {
		t.Fatalf("strip: %v", err)
	}
	if got, want := out.Len(), len(in)-len("TRAILER"); got != want {
		t.Errorf("stripped: %d bytes, want %d (the same chunks, no trailer)", got, want)
	}
	for _, leak := range []string{"secret", "GPS", "xmpmeta", "EXIF", "XMP ", "TRAILER"} {
		if bytes.Contains(out.Bytes(), []byte(leak)) {
			t.Errorf("the stripped WebP still holds %q", leak)
		}
	}
	if flags := out.Bytes()[20]; flags != 0x10 {
		t.Errorf("VP8X flags %#x, want only alpha (0x10)", flags)
	}
	img, err := webp.Decode(bytes.NewReader(out.Bytes()))
	if err != nil {
		t.Fatalf("the stripped WebP does not decode: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 1 || b.Dy() != 1 {
		t.Errorf("decoded %v, want 1 × 1", b)
	}
	for name, bad := range map[string][]byte{
		"truncated":     in[:len(in)-30],
		"not a WebP":    []byte("RIFF\x04\x00\x00\x00WAVE"),
		"chunk too big": append(append([]byte{}, in[:12]...), "VP8L\xff\xff\xff\x00"...),
	} {
		if err := media.StripWebP(io.Discard, bytes.NewReader(bad)); !errors.Is(err, media.ErrBadImage) {
			t.Errorf("%s: got %v, want ErrBadImage", name, err)
		}
	}
}

// TestThumbnailOfALongImage: a PNG of one pixel by ten million (20 KiB, within the pixel
// limit) is thumbnailed without the scaler's tables and buffers growing with its long side
// (draw.CatmullRom allocated about 1 GiB for it, 3.8 GiB at one by forty million). What is
// allocated is counted, not timed: the decoded image (10 MB) and a small picture.
func TestThumbnailOfALongImage(t *testing.T) {
	// The fixture is what image/png makes of a black image of that size.
	small, err := png.Decode(bytes.NewReader(blankGrayPNG(t, 3, 100_000)))
	if err != nil {
		t.Fatal(err)
	}
	if g, ok := small.(*image.Gray); !ok || g.Rect != image.Rect(0, 0, 3, 100_000) || !bytes.Equal(g.Pix, make([]byte, len(g.Pix))) {
		t.Fatalf("blankGrayPNG(3, 100000) decodes to a %T of %v, want a black *image.Gray of 3 × 100000", small, small.Bounds())
	}
	for _, c := range []struct{ w, h int }{{1, 10_000_000}, {10_000_000, 1}, {3, 3_000_000}} {
		pb := bytes.NewReader(blankGrayPNG(t, c.w, c.h))
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		th, err := media.Thumbnail(pb, 1, 320, 40_000_000)
		runtime.ReadMemStats(&after)
		if err != nil {
			t.Fatalf("%d × %d: %v", c.w, c.h, err)
		}
		if c.w > c.h && (th.Width != 320 || th.Height != 1) || c.h > c.w && (th.Height != 320 || th.Width != 1) {
			t.Errorf("%d × %d: thumbnail %d × %d, want 320 on the long side and 1 on the short", c.w, c.h, th.Width, th.Height)
		}
		// The decoded image is one byte a pixel (grey); three times that leaves room for
		// the decoder's buffers.
		if got, limit := after.TotalAlloc-before.TotalAlloc, uint64(3*c.w*c.h)+(16<<20); got > limit {
			t.Errorf("%d × %d: %d MiB allocated, want at most %d MiB", c.w, c.h, got>>20, limit>>20)
		}
	}
}

package media_test

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/gif"
	"io"
	"testing"

	"github.com/wschat/chat/internal/media"
)

// animatedGIF encodes a looping two-frame GIF with a global palette.
func animatedGIF(t *testing.T) []byte {
	t.Helper()
	pal := color.Palette{color.Black, color.White, color.RGBA{200, 0, 0, 255}}
	var frames []*image.Paletted
	for i := range 2 {
		f := image.NewPaletted(image.Rect(0, 0, 4, 3), pal)
		f.SetColorIndex(i, 1, uint8(1+i))
		frames = append(frames, f)
	}
	var b bytes.Buffer
	if err := gif.EncodeAll(&b, &gif.GIF{Image: frames, Delay: []int{10, 20}, LoopCount: 0, Config: image.Config{ColorModel: pal, Width: 4, Height: 3}}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// gifExtensions are a comment and an XMP packet, as editors write them.
var gifExtensions = []byte("\x21\xFE\x0Bsecret note\x00" +
	"\x21\xFF\x0BXMP DataXMP\x0Fhome: 52.1,4.3 \x00")

// TestStripGIF: comments and XMP go, frames, timing and looping stay byte for byte.
func TestStripGIF(t *testing.T) {
	plain := animatedGIF(t)
	// Put the metadata after the header and before the trailer, and some bytes after the end.
	first := bytes.Index(plain, []byte("\x21\xFF\x0BNETSCAPE2.0"))
	if first < 0 {
		t.Fatal("the encoder wrote no NETSCAPE2.0 loop extension")
	}
	end := len(plain) - 1
	in := append(append(append([]byte{}, plain[:first]...), gifExtensions...), plain[first:end]...)
	in = append(append(in, gifExtensions...), []byte("\x3BTRAILING")...)

	var out bytes.Buffer
	if err := media.StripGIF(&out, bytes.NewReader(in)); err != nil {
		t.Fatalf("strip: %v", err)
	}
	if !bytes.Equal(out.Bytes(), plain) {
		t.Errorf("stripped: %d bytes, want the %d of the GIF without its metadata", out.Len(), len(plain))
	}
	for _, leak := range []string{"secret", "XMP", "52.1", "TRAILING"} {
		if bytes.Contains(out.Bytes(), []byte(leak)) {
			t.Errorf("the stripped GIF still holds %q", leak)
		}
	}
	g, err := gif.DecodeAll(bytes.NewReader(out.Bytes()))
	if err != nil || len(g.Image) != 2 || g.Delay[1] != 20 || g.LoopCount != 0 {
		t.Errorf("decoded the stripped GIF: %v (frames %d)", err, len(g.Image))
	}
	for name, bad := range map[string][]byte{
		"no trailer":         plain[:end],
		"cut in a frame":     plain[:end-4],
		"cut in the palette": plain[:15],
		"cut in a comment":   append(append([]byte{}, plain[:first]...), gifExtensions[:6]...),
		"unknown block":      append(append([]byte{}, plain[:first]...), 0x99),
		"not a GIF":          []byte("\x89PNG\r\n\x1a\n...."),
		"empty":              nil,
	} {
		if err := media.StripGIF(io.Discard, bytes.NewReader(bad)); !errors.Is(err, media.ErrBadImage) {
			t.Errorf("%s: got %v, want ErrBadImage", name, err)
		}
	}
}

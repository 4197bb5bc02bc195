package h2

import (
	"encoding/binary"
	"fmt"
)

// handle acts on one frame; a connError ends the connection.
func (c *conn) handle(h frameHeader, p []byte) error {
	if c.contStream != 0 && (h.typ != frameContinuation || h.streamID != c.contStream) {
		return connError{errProtocol, "a header block is interrupted by " + h.String()}
	}
	switch h.typ {
	case frameData:
		return c.onData(h, p)
	case frameHeaders:
		return c.onHeaders(h, p)
	case frameContinuation:
		return c.onContinuation(h, p)
	case framePriority:
		return c.onPriority(h, p)
	case frameRSTStream:
		return c.onRSTStream(h, p)
	case frameSettings:
		return c.onSettings(h, p)
	case framePing:
		return c.onPing(h, p)
	case frameGoAway:
		if h.streamID != 0 {
			return connError{errProtocol, "GOAWAY on a stream"}
		}
		if len(p) < 8 {
			return connError{errFrameSize, "short GOAWAY"}
		}
		c.goAway(errNo)
		return nil
	case frameWindowUpdate:
		return c.onWindowUpdate(h, p)
	case framePushPromise:
		return connError{errProtocol, "PUSH_PROMISE from a client"}
	}
	return nil // unknown frame types are ignored
}

// streamState is what the reader knows of a stream the map no longer holds, or
// has not seen yet.
func (c *conn) idleStream(id uint32) bool { return id > c.maxStreamID }

func (c *conn) onData(h frameHeader, p []byte) error {
	if h.streamID == 0 {
		return connError{errProtocol, "DATA on stream 0"}
	}
	data, ok := stripPadding(h, p)
	if !ok {
		return connError{errProtocol, "DATA padding longer than the frame"}
	}
	n := int64(h.length) // the padding counts against the windows too
	c.mu.Lock()
	c.recvWindow -= n
	if c.recvWindow < 0 {
		c.mu.Unlock()
		return connError{errFlowControl, "DATA beyond the connection window"}
	}
	st := c.streams[h.streamID]
	if st == nil || st.remoteDone {
		c.giveBackLocked(nil, n)
		c.mu.Unlock()
		if st == nil && c.idleStream(h.streamID) {
			return connError{errProtocol, "DATA on an idle stream"}
		}
		c.resetStream(h.streamID, errStreamClosed)
		return nil
	}
	st.recvWindow -= n
	if st.recvWindow < 0 {
		c.mu.Unlock()
		return connError{errFlowControl, "DATA beyond the stream window"}
	}
	c.giveBackLocked(st, n-int64(len(data)))
	st.received += int64(len(data))
	if st.declared >= 0 && (st.received > st.declared || h.has(flagEndStream) && st.received != st.declared) {
		c.giveBackLocked(nil, int64(len(data)))
		c.resetLocked(st, errProtocol)
		c.mu.Unlock()
		c.closeIfDone()
		return nil
	}
	if len(data) > 0 && !st.body.push(data) {
		c.giveBackLocked(nil, int64(len(data))) // nobody reads it any more
	}
	c.mu.Unlock()
	if h.has(flagEndStream) {
		c.remoteEnded(st)
	}
	return nil
}

func (c *conn) onHeaders(h frameHeader, p []byte) error {
	if h.streamID == 0 || h.streamID%2 == 0 {
		return connError{errProtocol, fmt.Sprintf("HEADERS on stream %d", h.streamID)}
	}
	block, ok := stripPadding(h, p)
	if !ok {
		return connError{errProtocol, "HEADERS padding longer than the frame"}
	}
	selfDep := false
	if h.has(flagPriority) {
		if len(block) < 5 {
			return connError{errFrameSize, "HEADERS too short for its priority"}
		}
		selfDep = binary.BigEndian.Uint32(block)&(1<<31-1) == h.streamID
		block = block[5:]
	}
	c.fields, c.fieldsSize, c.fieldsErr = c.fields[:0], 0, false
	if !h.has(flagEndHeaders) {
		c.contStream, c.contEnd = h.streamID, h.has(flagEndStream)
		c.block = append(c.block[:0], block...)
		if selfDep {
			c.contEnd = false
			c.block = nil
			return connError{errProtocol, "a stream depends on itself"}
		}
		return nil
	}
	if err := c.decode(block); err != nil {
		return err
	}
	if selfDep {
		c.resetStream(h.streamID, errProtocol)
		c.bumpStreamID(h.streamID)
		return nil
	}
	return c.onRequestHeaders(h.streamID, h.has(flagEndStream))
}

// maxBlock bounds a header block gathered from CONTINUATION frames: a client
// sending them endlessly is cut off instead of growing the buffer.
func (c *conn) maxBlock() int { return c.s.maxHeaderBytes() + 64<<10 }

func (c *conn) onContinuation(h frameHeader, p []byte) error {
	if c.contStream == 0 || h.streamID != c.contStream {
		return connError{errProtocol, "CONTINUATION without HEADERS"}
	}
	if len(c.block)+len(p) > c.maxBlock() {
		return connError{errEnhanceYourCalm, "header block too large"}
	}
	c.block = append(c.block, p...)
	if !h.has(flagEndHeaders) {
		return nil
	}
	id, end := c.contStream, c.contEnd
	c.contStream = 0
	err := c.decode(c.block)
	if cap(c.block) > maxKeptBuffer {
		c.block = nil
	}
	if err != nil {
		return err
	}
	return c.onRequestHeaders(id, end)
}

// decode runs a whole header block through the HPACK decoder: every block must,
// even one whose stream is refused, or the dynamic table goes out of step.
func (c *conn) decode(block []byte) error {
	if _, err := c.dec.Write(block); err != nil {
		return connError{errCompression, err.Error()}
	}
	if err := c.dec.Close(); err != nil {
		return connError{errCompression, err.Error()}
	}
	return nil
}

func (c *conn) bumpStreamID(id uint32) {
	c.mu.Lock()
	c.maxStreamID = max(c.maxStreamID, id)
	c.mu.Unlock()
}

func (c *conn) onPriority(h frameHeader, p []byte) error {
	if h.streamID == 0 {
		return connError{errProtocol, "PRIORITY on stream 0"}
	}
	if len(p) != 5 {
		c.resetStream(h.streamID, errFrameSize)
		return nil
	}
	if binary.BigEndian.Uint32(p)&(1<<31-1) == h.streamID {
		c.resetStream(h.streamID, errProtocol)
	}
	return nil
}

func (c *conn) onRSTStream(h frameHeader, p []byte) error {
	if h.streamID == 0 {
		return connError{errProtocol, "RST_STREAM on stream 0"}
	}
	if len(p) != 4 {
		return connError{errFrameSize, "RST_STREAM of the wrong size"}
	}
	if c.idleStream(h.streamID) {
		return connError{errProtocol, "RST_STREAM on an idle stream"}
	}
	c.mu.Lock()
	st := c.streams[h.streamID]
	calm := false
	if st != nil {
		delete(c.streams, h.streamID)
		st.abort(errStreamReset)
		c.cond.Broadcast()
		if !st.localDone.Load() {
			c.resetScore++
			calm = c.resetScore > maxResetScore
		}
	}
	c.mu.Unlock()
	if calm {
		return connError{errEnhanceYourCalm, "too many streams reset"}
	}
	c.closeIfDone()
	return nil
}

func (c *conn) onSettings(h frameHeader, p []byte) error {
	if h.streamID != 0 {
		return connError{errProtocol, "SETTINGS on a stream"}
	}
	if h.has(flagAck) {
		if len(p) != 0 {
			return connError{errFrameSize, "SETTINGS ACK with a payload"}
		}
		return nil
	}
	if len(p)%6 != 0 {
		return connError{errFrameSize, "SETTINGS of the wrong size"}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for ; len(p) > 0; p = p[6:] {
		id, v := binary.BigEndian.Uint16(p), binary.BigEndian.Uint32(p[2:])
		switch id {
		case settingHeaderTableSize:
			c.enc.SetMaxDynamicTableSizeLimit(min(v, 4096))
		case settingEnablePush:
			if v > 1 {
				return connError{errProtocol, "SETTINGS_ENABLE_PUSH not 0 or 1"}
			}
		case settingInitialWindowSize:
			if v > maxWindow {
				return connError{errFlowControl, "SETTINGS_INITIAL_WINDOW_SIZE too large"}
			}
			delta := int64(v) - c.peerWindow
			c.peerWindow = int64(v)
			for _, st := range c.streams {
				st.sendWindow += delta
				if st.sendWindow > maxWindow {
					return connError{errFlowControl, "a stream window grows too large"}
				}
			}
			c.cond.Broadcast()
		case settingMaxFrameSize:
			if v < minMaxFrameSize || v > maxMaxFrameSize {
				return connError{errProtocol, "SETTINGS_MAX_FRAME_SIZE out of range"}
			}
			c.peerMaxFrame = int(v)
		}
	}
	if !c.closed {
		c.wbuf = appendSettings(c.wbuf, true)
	}
	c.sendPendingLocked()
	return nil
}

func (c *conn) onPing(h frameHeader, p []byte) error {
	if h.streamID != 0 {
		return connError{errProtocol, "PING on a stream"}
	}
	if len(p) != 8 {
		return connError{errFrameSize, "PING of the wrong size"}
	}
	if h.has(flagAck) {
		return nil
	}
	c.write(func(b []byte) []byte { return appendPing(b, true, p) })
	return nil
}

// limitPending writes now when the frames buffered reach maxPendingWrite.
func (c *conn) limitPending() error {
	c.mu.Lock()
	n := len(c.wbuf)
	c.mu.Unlock()
	if n > maxPendingWrite {
		return c.flush()
	}
	return nil
}

func (c *conn) onWindowUpdate(h frameHeader, p []byte) error {
	if len(p) != 4 {
		return connError{errFrameSize, "WINDOW_UPDATE of the wrong size"}
	}
	incr := int64(binary.BigEndian.Uint32(p) & (1<<31 - 1))
	c.mu.Lock()
	defer c.mu.Unlock()
	if h.streamID == 0 {
		if incr == 0 {
			return connError{errProtocol, "WINDOW_UPDATE of 0"}
		}
		c.sendWindow += incr
		if c.sendWindow > maxWindow {
			return connError{errFlowControl, "connection window too large"}
		}
	} else {
		st := c.streams[h.streamID]
		if st == nil {
			if c.idleStream(h.streamID) {
				return connError{errProtocol, "WINDOW_UPDATE on an idle stream"}
			}
			return nil
		}
		if incr == 0 {
			c.resetLocked(st, errProtocol)
			return nil
		}
		st.sendWindow += incr
		if st.sendWindow > maxWindow {
			c.resetLocked(st, errFlowControl)
			return nil
		}
	}
	c.cond.Broadcast()
	c.sendPendingLocked()
	return nil
}

// resetStream sends RST_STREAM for id and forgets the stream.
func (c *conn) resetStream(id uint32, code uint32) {
	c.mu.Lock()
	if st := c.streams[id]; st != nil {
		c.resetLocked(st, code)
	} else if !c.closed {
		c.wbuf = appendRSTStream(c.wbuf, id, code)
	}
	c.mu.Unlock()
	c.closeIfDone()
}

func (c *conn) resetLocked(st *stream, code uint32) {
	delete(c.streams, st.id)
	st.abort(errStreamReset)
	if !c.closed {
		c.wbuf = appendRSTStream(c.wbuf, st.id, code)
	}
	c.cond.Broadcast()
}

// giveBack returns n received bytes to the client's windows: the
// connection's, and st's unless nil.
func (c *conn) giveBack(st *stream, n int64) {
	c.mu.Lock()
	c.giveBackLocked(st, n)
	c.mu.Unlock()
}

func (c *conn) giveBackLocked(st *stream, n int64) {
	if n <= 0 || c.closed {
		return
	}
	c.recvUnacked += n
	if c.recvUnacked >= connWindow/4 {
		c.wbuf = appendWindowUpdate(c.wbuf, 0, uint32(c.recvUnacked))
		c.recvWindow += c.recvUnacked
		c.recvUnacked = 0
	}
	if st == nil || st.remoteDone {
		return
	}
	st.recvUnacked += n
	if st.recvUnacked >= streamWindow/4 {
		c.wbuf = appendWindowUpdate(c.wbuf, st.id, uint32(st.recvUnacked))
		st.recvWindow += st.recvUnacked
		st.recvUnacked = 0
	}
}

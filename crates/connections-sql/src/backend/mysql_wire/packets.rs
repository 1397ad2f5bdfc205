//! MySQL protocol packets over one connection (TCP, Unix socket or TLS): framing, and the small
//! reader of fields the row decoding uses.
//!
//! Every packet is a 3-byte little-endian payload length, a sequence number and the payload.
//! Outgoing packets are cut into frames by `mysql_common`'s `packet_to_chunks` and their payloads
//! serialized by its packet types. Incoming packets are framed here: the connection reads the
//! socket in large chunks into one buffer and hands out payloads as slices of it, so a result's
//! rows are decoded where they arrived, without a copy or an allocation each. (`mysql_common`'s
//! `PacketCodec::decode` copies every payload into a destination buffer, which is the per-row copy
//! this reader exists to avoid.)

use std::io;
use std::ops::Range;

use bytes::BytesMut;
use mysql_common::constants::{CapabilityFlags, Command};
use mysql_common::io::ParseBuf;
use mysql_common::packets::ErrPacket;
use mysql_common::proto::MySerialize;
use mysql_common::proto::codec::packet_to_chunks;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// The bytes read from the socket at most at once, and the buffer's starting size.
pub(super) const READ_CHUNK: usize = 256 * 1024;

/// A buffered reader (under TLS).
#[cfg(feature = "rustls")]
pub(super) type BufReader<S> = tokio::io::BufReader<S>;
/// A payload this long continues in the next packet.
const MAX_PAYLOAD: usize = 0xFF_FFFF;

/// The payload of the last packet read: a range of the read buffer, or, for a payload split over
/// several packets (16 MiB or more), the joined copy.
#[derive(Clone)]
pub(super) enum Payload {
    Buffered(Range<usize>),
    Joined,
}

/// The transport under the packets.
pub(super) enum Stream {
    Tcp(TcpStream),
    #[cfg(unix)]
    Unix(tokio::net::UnixStream),
    /// TLS over a read buffer: rustls reads the socket 4 KiB at a time, the buffer makes that
    /// one system call per 256 KiB.
    #[cfg(feature = "rustls")]
    Tls(Box<tokio_rustls::client::TlsStream<BufReader<TcpStream>>>),
    #[cfg(all(unix, feature = "rustls"))]
    UnixTls(Box<tokio_rustls::client::TlsStream<BufReader<tokio::net::UnixStream>>>),
    /// While the TCP stream is being wrapped in TLS (and after that failed).
    Gone,
}

impl Stream {
    async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Tcp(s) => s.read(buf).await,
            #[cfg(unix)]
            Self::Unix(s) => s.read(buf).await,
            #[cfg(feature = "rustls")]
            Self::Tls(s) => s.read(buf).await,
            #[cfg(all(unix, feature = "rustls"))]
            Self::UnixTls(s) => s.read(buf).await,
            Self::Gone => Err(gone()),
        }
    }

    async fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Self::Tcp(s) => s.write_all(buf).await,
            #[cfg(unix)]
            Self::Unix(s) => s.write_all(buf).await,
            #[cfg(feature = "rustls")]
            Self::Tls(s) => {
                s.write_all(buf).await?;
                s.flush().await
            }
            #[cfg(all(unix, feature = "rustls"))]
            Self::UnixTls(s) => {
                s.write_all(buf).await?;
                s.flush().await
            }
            Self::Gone => Err(gone()),
        }
    }
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "the connection's TLS handshake failed")
}

/// One connection to the server, with its read buffer.
pub(super) struct Conn {
    pub(super) stream: Stream,
    buf: Vec<u8>,
    /// The unread bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    joined: Vec<u8>,
    out: BytesMut,
    serialized: Vec<u8>,
    /// The sequence number of the last packet read.
    pub(super) seq: u8,
    /// The server's id of the connection (its thread id, what `KILL QUERY` takes).
    pub(super) id: u32,
    /// The capabilities client and server agreed on (how error packets read).
    pub(super) capabilities: CapabilityFlags,
}

impl Conn {
    pub(super) fn new(stream: Stream) -> Self {
        Self {
            stream,
            buf: vec![0; READ_CHUNK],
            start: 0,
            end: 0,
            joined: Vec::new(),
            out: BytesMut::new(),
            serialized: Vec::new(),
            seq: 0,
            id: 0,
            capabilities: CapabilityFlags::CLIENT_PROTOCOL_41,
        }
    }

    /// Whether bytes the server sent are buffered and not yet read (none may be when the
    /// connection switches to TLS).
    pub(super) fn buffered(&self) -> bool {
        self.end > self.start
    }

    /// Reads until at least `need` unread bytes are buffered.
    async fn fill(&mut self, need: usize) -> io::Result<()> {
        if self.end - self.start >= need {
            return Ok(());
        }
        if self.buf.len() - self.start < need {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if self.buf.len() < need {
                self.buf.resize(need.next_power_of_two(), 0);
            }
        }
        while self.end - self.start < need {
            let read = self.stream.read(&mut self.buf[self.end..]).await?;
            if read == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the server closed the connection"));
            }
            self.end += read;
        }
        Ok(())
    }

    /// Reads one packet's header and payload, leaving the payload buffered.
    async fn frame(&mut self) -> io::Result<Range<usize>> {
        self.fill(4).await?;
        let h = &self.buf[self.start..self.start + 4];
        let length = usize::from(h[0]) | usize::from(h[1]) << 8 | usize::from(h[2]) << 16;
        self.seq = h[3];
        self.fill(4 + length).await?;
        let payload = self.start + 4..self.start + 4 + length;
        self.start = payload.end;
        Ok(payload)
    }

    /// Reads the next packet.
    pub(super) async fn read(&mut self) -> io::Result<Payload> {
        let first = self.frame().await?;
        if first.len() < MAX_PAYLOAD {
            return Ok(Payload::Buffered(first));
        }
        let mut joined = std::mem::take(&mut self.joined);
        joined.clear();
        joined.extend_from_slice(&self.buf[first]);
        loop {
            let next = self.frame().await?;
            let last = next.len() < MAX_PAYLOAD;
            joined.extend_from_slice(&self.buf[next]);
            if last {
                break;
            }
        }
        self.joined = joined;
        Ok(Payload::Joined)
    }

    /// The bytes of a payload [`read`](Self::read) returned (valid until the next read).
    pub(super) fn bytes(&self, payload: &Payload) -> &[u8] {
        match payload {
            Payload::Buffered(range) => &self.buf[range.clone()],
            Payload::Joined => &self.joined,
        }
    }

    /// Reads the next packet and returns a copy of its payload (for the few small packets kept).
    pub(super) async fn read_owned(&mut self) -> io::Result<Vec<u8>> {
        let payload = self.read().await?;
        Ok(self.bytes(&payload).to_vec())
    }

    /// Sends `payload` as the next packet of the exchange under way (the sequence number after
    /// the last one read).
    pub(super) async fn reply(&mut self, payload: &[u8]) -> io::Result<()> {
        self.seq = self.seq.wrapping_add(1);
        self.send(self.seq, payload).await
    }

    /// Serializes `packet` and sends it as the next packet of the exchange under way.
    pub(super) async fn reply_with(&mut self, packet: &impl MySerialize) -> io::Result<()> {
        let mut serialized = std::mem::take(&mut self.serialized);
        serialized.clear();
        packet.serialize(&mut serialized);
        let sent = self.reply(&serialized).await;
        self.serialized = serialized;
        sent
    }

    /// Sends a command: a serialized command packet, as the first packet of an exchange.
    pub(super) async fn command(&mut self, packet: &impl MySerialize) -> io::Result<()> {
        let mut serialized = std::mem::take(&mut self.serialized);
        serialized.clear();
        packet.serialize(&mut serialized);
        let sent = self.send(0, &serialized).await;
        self.serialized = serialized;
        sent
    }

    /// Sends a command that `mysql_common` has no packet type for (`COM_QUERY`,
    /// `COM_STMT_PREPARE`): the command byte, then its text.
    pub(super) async fn command_text(&mut self, command: Command, text: &[u8]) -> io::Result<()> {
        let mut serialized = std::mem::take(&mut self.serialized);
        serialized.clear();
        serialized.push(command as u8);
        serialized.extend_from_slice(text);
        let sent = self.send(0, &serialized).await;
        self.serialized = serialized;
        sent
    }

    /// Sends one packet (in frames of at most 16 MiB) with sequence number `seq`, in one write.
    async fn send(&mut self, seq: u8, mut payload: &[u8]) -> io::Result<()> {
        self.out.clear();
        self.seq = packet_to_chunks(seq, &mut payload, &mut self.out).wrapping_sub(1);
        self.stream.write_all(&self.out).await
    }

    /// A server's error packet (`0xFF`).
    pub(super) fn error(&self, payload: &[u8]) -> ServerError {
        ServerError::parse(payload, self.capabilities)
    }

    /// Says goodbye (`COM_QUIT`) and closes the connection.
    pub(super) async fn quit(mut self) {
        let _ = self.stream.write_all(&[1, 0, 0, 0, Command::COM_QUIT as u8]).await;
        self.stream = Stream::Gone;
    }
}

impl Drop for Conn {
    /// Says goodbye (`COM_QUIT`) if the socket takes it at once, so that the server does not log
    /// an aborted connection; a connection dropped mid-result is closed all the same. (A TLS
    /// connection says goodbye only through [`quit`](Self::quit).)
    fn drop(&mut self) {
        let quit = [1, 0, 0, 0, Command::COM_QUIT as u8];
        match &self.stream {
            Stream::Tcp(s) => drop(s.try_write(&quit)),
            #[cfg(unix)]
            Stream::Unix(s) => drop(s.try_write(&quit)),
            #[cfg(feature = "rustls")]
            Stream::Tls(_) => {}
            #[cfg(all(unix, feature = "rustls"))]
            Stream::UnixTls(_) => {}
            Stream::Gone => {}
        }
    }
}

/// A reader of a payload's fields, each read failing when the payload ends too early.
pub(super) struct Fields<'a> {
    data: &'a [u8],
}

impl<'a> Fields<'a> {
    pub(super) fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    /// The bytes not yet read.
    pub(super) fn rest(&self) -> &'a [u8] {
        self.data
    }

    pub(super) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, tail) = self.data.split_at_checked(n)?;
        self.data = tail;
        Some(head)
    }

    pub(super) fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    pub(super) fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_le_bytes([b[0], b[1]]))
    }

    /// A length-encoded integer.
    pub(super) fn lenenc(&mut self) -> Option<u64> {
        match self.u8()? {
            0xFC => self.u16().map(u64::from),
            0xFD => self.take(3).map(|b| u64::from(b[0]) | u64::from(b[1]) << 8 | u64::from(b[2]) << 16),
            0xFE => self.take(8).map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default())),
            0xFB | 0xFF => None,
            small => Some(u64::from(small)),
        }
    }

    /// A length-encoded string.
    pub(super) fn lenenc_bytes(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.lenenc()?).ok()?;
        self.take(n)
    }
}

/// A server's error packet (`0xFF`): its error number, SQLSTATE and message.
#[derive(Debug)]
pub(super) struct ServerError {
    pub(super) number: u16,
    pub(super) sqlstate: String,
    pub(super) message: String,
}

impl ServerError {
    /// Parses an error packet's payload (starting with `0xFF`), read with `mysql_common`'s
    /// `ErrPacket` under the connection's capabilities.
    pub(super) fn parse(payload: &[u8], mut capabilities: CapabilityFlags) -> Self {
        // MariaDB leaves the SQLSTATE out of some errors (a killed connection's) even under the
        // 4.1 protocol, where `mysql_common` expects one
        if payload.get(3) != Some(&b'#') {
            capabilities.remove(CapabilityFlags::CLIENT_PROTOCOL_41);
        }
        match ParseBuf(payload).parse::<ErrPacket<'_>>(capabilities) {
            Ok(ErrPacket::Error(error)) => Self {
                number: error.error_code(),
                sqlstate: error.sql_state_ref().map_or_else(|| "HY000".to_owned(), |s| s.as_str().into_owned()),
                message: error.message_str().into_owned(),
            },
            Ok(ErrPacket::Progress(_)) | Err(_) => Self {
                number: 0,
                sqlstate: "HY000".to_owned(),
                message: "an error packet that does not read as one".to_owned(),
            },
        }
    }

    /// Whether the error means the connection, not the statement, failed (the rule for sqlx's
    /// errors, [`crate::error::classify`]).
    pub(super) fn connection_lost(&self) -> bool {
        crate::error::connection_sqlstate(&self.sqlstate) || crate::error::connection_mysql_error(self.number)
    }
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "error returned from database: {} ({}): {}", self.number, self.sqlstate, self.message)
    }
}

impl std::error::Error for ServerError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_encoded_integers_read_back() {
        for n in [0_u64, 250, 251, 0xFFFF, 0x1_0000, 0xFF_FFFF, 0x100_0000] {
            let mut out = Vec::new();
            mysql_common::io::WriteMysqlExt::write_lenenc_int(&mut out, n).unwrap();
            assert_eq!(Fields::new(&out).lenenc(), Some(n), "{n}");
        }
        assert_eq!(Fields::new(&[0xFB]).lenenc(), None, "0xFB is NULL, not a length");
        assert_eq!(Fields::new(&[0xFC, 1]).lenenc(), None, "cut short");
    }

    /// Writes `payloads` as packets from a local server socket and reads them back.
    async fn round_trip(payloads: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
        use tokio::io::AsyncWriteExt as _;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let count = payloads.len();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut seq = 0_u8;
            for payload in payloads {
                // a payload of 16 MiB or more goes out in pieces of 0xFFFFFF bytes, the last shorter
                let mut pieces: Vec<&[u8]> = payload.chunks(MAX_PAYLOAD).collect();
                if payload.len() % MAX_PAYLOAD == 0 {
                    pieces.push(&[]);
                }
                for piece in pieces {
                    let n = u32::try_from(piece.len()).unwrap().to_le_bytes();
                    socket.write_all(&[n[0], n[1], n[2], seq]).await.unwrap();
                    socket.write_all(piece).await.unwrap();
                    seq = seq.wrapping_add(1);
                }
            }
        });
        let mut conn = Conn::new(Stream::Tcp(TcpStream::connect(address).await.unwrap()));
        let mut out = Vec::new();
        for _ in 0..count {
            out.push(conn.read_owned().await.unwrap());
        }
        server.await.unwrap();
        out
    }

    #[tokio::test]
    async fn packets_of_every_size_arrive_whole() {
        let big: Vec<u8> = (0..MAX_PAYLOAD + 1000).map(|i| u8::try_from(i % 251).unwrap()).collect();
        let exact = vec![7_u8; MAX_PAYLOAD];
        let small: Vec<Vec<u8>> = (0..20_000).map(|i: usize| i.to_le_bytes()[..i % 8].to_vec()).collect();
        let mut sent = vec![b"first".to_vec(), big, Vec::new(), exact];
        sent.extend(small);
        let received = round_trip(sent.clone()).await;
        assert_eq!(received.len(), sent.len());
        assert!(received == sent, "every payload intact and in order");
    }

    #[test]
    fn error_packets_parse_with_and_without_sqlstate() {
        let e = ServerError::parse(b"\xff\x28\x04#42000You have an error", CapabilityFlags::CLIENT_PROTOCOL_41);
        assert_eq!((e.number, e.sqlstate.as_str(), e.message.as_str()), (1064, "42000", "You have an error"));
        assert!(!e.connection_lost());
        let e = ServerError::parse(b"\xff\x87\x07Connection was killed", CapabilityFlags::CLIENT_PROTOCOL_41);
        assert_eq!((e.number, e.sqlstate.as_str()), (1927, "HY000"));
        assert!(e.connection_lost());
    }
}

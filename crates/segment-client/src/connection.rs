//! One TCP connection to a segment store: dialling with the `Hello` exchange, and strictly
//! sequential request → reply exchanges on it.

use bytes::BytesMut;
use pravaha_wire::{self as wire, Reply, Request};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::{ClientError, Endpoint};

/// Room for a typical reply; larger ones grow the buffer (bounded by the frame limit).
const INPUT_CAPACITY: usize = 8 << 10;

pub(crate) struct Connection {
    stream: TcpStream,
    /// Received bytes not yet split into frames. Empty between clean exchanges.
    input: BytesMut,
}

impl Connection {
    /// Dials `endpoint` and exchanges `Hello`: the server's version range must contain ours.
    pub(crate) async fn open(endpoint: Endpoint) -> Result<Self, ClientError> {
        let stream = TcpStream::connect(endpoint)
            .await
            .map_err(|error| ClientError::Connect {
                endpoint,
                source: error.into(),
            })?;
        stream.set_nodelay(true).map_err(ClientError::io)?;
        let mut connection = Self {
            stream,
            input: BytesMut::with_capacity(INPUT_CAPACITY),
        };
        let hello = Request::Hello(wire::Hello {
            high_version: wire::WIRE_VERSION,
            low_version: wire::OLDEST_COMPATIBLE_VERSION,
        });
        let mut frame = BytesMut::new();
        hello.encode(&mut frame)?;
        connection.write(&frame).await?;
        match connection.read_reply().await? {
            Reply::Hello(server)
                if server.low_version <= wire::WIRE_VERSION
                    && wire::WIRE_VERSION <= server.high_version =>
            {
                tracing::debug!(%endpoint, high = server.high_version, low = server.low_version, "connected to segment store");
                Ok(connection)
            }
            Reply::Hello(server) => Err(ClientError::Protocol(format!(
                "segment store {endpoint} speaks wire versions {}..={}, not {}",
                server.low_version,
                server.high_version,
                wire::WIRE_VERSION
            ))),
            other => Err(ClientError::Protocol(format!(
                "segment store {endpoint} answered Hello with {}",
                other.name()
            ))),
        }
    }

    /// Writes one encoded request and reads frames until the reply carrying `request_id`.
    /// `KeepAlive` frames are skipped; any other reply with another id is a protocol violation
    /// (exchanges are sequential, so it cannot belong to anything else).
    pub(crate) async fn exchange(
        &mut self,
        frame: &[u8],
        request_id: i64,
    ) -> Result<Reply, ClientError> {
        self.write(frame).await?;
        loop {
            let reply = self.read_reply().await?;
            if reply == Reply::KeepAlive {
                continue;
            }
            if reply.request_id() != request_id {
                return Err(ClientError::Protocol(format!(
                    "expected the reply to request {request_id}, got {} for request {}",
                    reply.name(),
                    reply.request_id()
                )));
            }
            return Ok(reply);
        }
    }

    /// Whether this idle connection can carry another request: the server has not closed it
    /// and has sent nothing unsolicited. Never waits.
    pub(crate) fn is_usable(&self) -> bool {
        if !self.input.is_empty() {
            return false;
        }
        let mut probe = [0u8; 1];
        matches!(
            self.stream.try_read(&mut probe),
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock
        )
    }

    async fn write(&mut self, frame: &[u8]) -> Result<(), ClientError> {
        self.stream.write_all(frame).await.map_err(ClientError::io)
    }

    async fn read_reply(&mut self) -> Result<Reply, ClientError> {
        loop {
            if let Some((type_code, payload)) =
                wire::split_frame(&mut self.input, wire::MAX_FRAME_PAYLOAD)?
            {
                return Ok(Reply::decode(type_code, payload)?);
            }
            let received = self
                .stream
                .read_buf(&mut self.input)
                .await
                .map_err(ClientError::io)?;
            if received == 0 {
                return Err(ClientError::io(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the segment store closed the connection",
                )));
            }
        }
    }
}

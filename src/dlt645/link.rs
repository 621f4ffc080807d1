//! A frame exchange on a byte line (a serial port, or a TCP connection to a serial server
//! in transparent mode), shared by DL/T 645 and CJ/T 188: write the request, then read
//! until the decoder finds one whole frame. The caller bounds the wait with its timeout;
//! what a frame that answers something else means is decided by the protocol module.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// A line the meters are on.
pub trait Line: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug> Line for T {}

/// Bytes read while waiting for one answer before giving up on the line as noise.
const NOISE_MAX: usize = 1024;

/// How a decoder reports bytes that are not (yet) a frame.
pub enum Partial<E> {
    /// Read more.
    More,
    /// The bytes are a damaged or wrong frame.
    Bad(E),
}

/// Writes `request` and reads one frame with `decode`. `Ok(Err(e))` is a damaged frame,
/// `Err` the line failing (closed, or only noise).
pub async fn exchange<L, F, E>(
    line: &mut L,
    request: &[u8],
    decode: impl Fn(&[u8]) -> Result<F, Partial<E>>,
) -> io::Result<Result<F, E>>
where
    L: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    line.write_all(request).await?;
    line.flush().await?;
    let mut buf = Vec::with_capacity(64);
    let mut chunk = [0u8; 256];
    loop {
        let n = line.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the line closed"));
        }
        buf.extend_from_slice(&chunk[..n]);
        match decode(&buf) {
            Ok(frame) => return Ok(Ok(frame)),
            Err(Partial::Bad(e)) => return Ok(Err(e)),
            Err(Partial::More) if buf.len() > NOISE_MAX => {
                return Err(io::Error::new(io::ErrorKind::InvalidData, format!("{} bytes without a frame", buf.len())))
            }
            Err(Partial::More) => {}
        }
    }
}

/// The DL/T 645 decoder for [`exchange`].
pub fn dlt645(buf: &[u8]) -> Result<super::frame::Frame, Partial<super::frame::FrameError>> {
    use super::frame::FrameError;
    match super::frame::decode(buf) {
        Ok((f, _)) => Ok(f),
        Err(FrameError::Incomplete(_) | FrameError::NoStart(_)) => Err(Partial::More),
        Err(e) => Err(Partial::Bad(e)),
    }
}

/// The CJ/T 188 decoder for [`exchange`].
pub fn cjt188(buf: &[u8]) -> Result<crate::cjt188::Frame, Partial<crate::cjt188::Error>> {
    use crate::cjt188::Error;
    match crate::cjt188::decode(buf) {
        Ok((f, _)) => Ok(f),
        Err(Error::Incomplete(_) | Error::NoStart(_)) => Err(Partial::More),
        Err(e) => Err(Partial::Bad(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_answer_in_pieces_after_noise_is_one_frame() {
        let (mut gateway, mut meter) = tokio::io::duplex(64);
        let answer = super::super::frame::encode(
            &super::super::frame::Frame {
                address: super::super::frame::Address([1, 0, 0, 0, 0, 0]),
                control: 0x91,
                data: vec![0, 0, 1, 0, 0x12, 0x34, 0, 0],
            },
            4,
        )
        .unwrap();
        let served = tokio::spawn(async move {
            let mut req = [0u8; 3];
            meter.read_exact(&mut req).await.unwrap();
            meter.write_all(&[0x00, 0x55]).await.unwrap(); // noise
            for piece in answer.chunks(5) {
                meter.write_all(piece).await.unwrap();
                tokio::task::yield_now().await;
            }
            meter
        });
        let got = exchange(&mut gateway, &[1, 2, 3], dlt645).await.unwrap().unwrap();
        assert_eq!(got.control, 0x91);
        assert_eq!(got.data, vec![0, 0, 1, 0, 0x12, 0x34, 0, 0]);
        drop(served.await.unwrap());
        // the far end gone: a line failure, not a frame
        assert!(exchange(&mut gateway, &[1], dlt645).await.is_err());
    }
}

//! Opening a Modbus client on each kind of bus, or the bare line a meter is on. Everything here is I/O; what a transport
//! failure means for polling is decided in the poller.

use std::io;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio_modbus::client::{rtu, tcp, Context};
use tokio_serial::{SerialPort, SerialPortBuilderExt};

use super::config::{Parity, Transport};
use crate::dlt645::link::Line;

/// Connects (or opens the serial port) within `timeout`.
pub async fn connect(transport: &Transport, timeout: Duration) -> io::Result<Context> {
    match transport {
        Transport::Tcp { address } => {
            let stream = tcp_connect(address, timeout).await?;
            Ok(tcp::attach(stream))
        }
        Transport::RtuOverTcp { address, .. } => {
            let stream = tcp_connect(address, timeout).await?;
            Ok(rtu::attach(stream))
        }
        Transport::Rtu { .. } => Ok(rtu::attach(open_serial(transport)?)),
    }
}

/// Opens the byte line a DL/T 645 or CJ/T 188 meter is on: the serial port, or the TCP
/// connection to a serial server in transparent mode.
pub async fn open_line(transport: &Transport, timeout: Duration) -> io::Result<Box<dyn Line>> {
    match transport {
        Transport::Tcp { address } | Transport::RtuOverTcp { address, .. } => {
            Ok(Box::new(tcp_connect(address, timeout).await?))
        }
        Transport::Rtu { .. } => Ok(Box::new(open_serial(transport)?)),
    }
}

fn open_serial(transport: &Transport) -> io::Result<tokio_serial::SerialStream> {
    match transport {
        Transport::Rtu { device, baud, parity, stop_bits, data_bits } => {
            let path = device.to_string_lossy().into_owned();
            let port = tokio_serial::new(&path, *baud)
                .parity(match parity {
                    Parity::None => tokio_serial::Parity::None,
                    Parity::Even => tokio_serial::Parity::Even,
                    Parity::Odd => tokio_serial::Parity::Odd,
                })
                .stop_bits(if *stop_bits == 2 { tokio_serial::StopBits::Two } else { tokio_serial::StopBits::One })
                .data_bits(if *data_bits == 7 { tokio_serial::DataBits::Seven } else { tokio_serial::DataBits::Eight })
                .open_native_async()
                .map_err(|e| io::Error::new(io::ErrorKind::NotFound, format!("cannot open {path}: {e}")))?;
            // Bytes left from an answer that arrived after we gave up on it would be read
            // as the answer to the next request: start clean.
            let _ = port.clear(tokio_serial::ClearBuffer::All);
            Ok(port)
        }
        _ => Err(io::Error::new(io::ErrorKind::InvalidInput, "not a serial line")),
    }
}

pub(super) async fn tcp_connect(address: &str, timeout: Duration) -> io::Result<TcpStream> {
    let stream = tokio::time::timeout(timeout, TcpStream::connect(address))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, format!("connecting to {address} timed out")))??;
    stream.set_nodelay(true)?;
    Ok(stream)
}

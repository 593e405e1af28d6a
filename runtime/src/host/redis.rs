//! `fermyon:spin/redis`: outbound Redis, to servers the component's `allowed_outbound_hosts`
//! names (`redis://host[:port]`, port 6379 by default).

use redis::{ConnectionAddr, Value, aio::MultiplexedConnection};
use wasmtime::component::Resource;

use crate::allow_list::redact;

use super::{
    SpinView,
    bindings::fermyon::spin::redis::{Error, Host, HostConnection, RedisParameter, RedisResult},
    io_deadline,
};

/// A connection the guest opened.
pub struct RedisConnection(MultiplexedConnection);

type Answer<T> = wasmtime::Result<Result<T, Error>>;

fn other(err: impl std::fmt::Display) -> Error {
    Error::Other(err.to_string())
}

impl SpinView<'_> {
    fn redis(&self, handle: &Resource<RedisConnection>) -> wasmtime::Result<MultiplexedConnection> {
        Ok(self.table.get(handle)?.0.clone())
    }

    /// Whether the component may connect to the server at `address`.
    fn redis_allowed(&self, address: &str) -> Result<bool, Error> {
        let client = redis::Client::open(address).map_err(|_| Error::InvalidAddress)?;
        Ok(match client.get_connection_info().addr() {
            ConnectionAddr::Tcp(host, port) => {
                self.component.allow.allows("redis", host, Some(*port))
            }
            ConnectionAddr::TcpTls { host, port, .. } => {
                self.component.allow.allows("rediss", host, Some(*port))
            }
            _ => false,
        })
    }
}

/// Runs `command` on `connection`, converting its reply to `T`.
async fn run<T: redis::FromRedisValue>(
    mut connection: MultiplexedConnection,
    command: redis::Cmd,
) -> Result<T, Error> {
    match io_deadline(command.query_async(&mut connection)).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) if err.kind() == redis::ErrorKind::UnexpectedReturnType => {
            Err(Error::TypeError)
        }
        Ok(Err(err)) => Err(other(err)),
        Err(elapsed) => Err(other(elapsed)),
    }
}

fn command(name: &str) -> redis::Cmd {
    redis::cmd(name)
}

impl HostConnection for SpinView<'_> {
    async fn open(&mut self, address: String) -> Answer<Resource<RedisConnection>> {
        // Like Spin: an address the manifest does not allow is an invalid one.
        match self.redis_allowed(&address) {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(component = %self.component.id, "redis connection to `{}` denied: not in allowed_outbound_hosts", redact(&address));
                return Ok(Err(Error::InvalidAddress));
            }
            Err(err) => return Ok(Err(err)),
        }
        let client = match redis::Client::open(address.as_str()) {
            Ok(client) => client,
            Err(_) => return Ok(Err(Error::InvalidAddress)),
        };
        let connection = match io_deadline(client.get_multiplexed_async_connection()).await {
            Ok(Ok(connection)) => connection,
            Ok(Err(err)) => return Ok(Err(other(err))),
            Err(elapsed) => return Ok(Err(other(elapsed))),
        };
        Ok(Ok(self.table.push(RedisConnection(connection))?))
    }

    async fn publish(
        &mut self,
        c: Resource<RedisConnection>,
        channel: String,
        payload: Vec<u8>,
    ) -> Answer<()> {
        let mut publish = command("PUBLISH");
        publish.arg(channel).arg(payload);
        Ok(run::<i64>(self.redis(&c)?, publish).await.map(drop))
    }

    async fn get(&mut self, c: Resource<RedisConnection>, key: String) -> Answer<Option<Vec<u8>>> {
        let mut get = command("GET");
        get.arg(key);
        Ok(run(self.redis(&c)?, get).await)
    }

    async fn set(
        &mut self,
        c: Resource<RedisConnection>,
        key: String,
        value: Vec<u8>,
    ) -> Answer<()> {
        let mut set = command("SET");
        set.arg(key).arg(value);
        Ok(run::<()>(self.redis(&c)?, set).await)
    }

    async fn incr(&mut self, c: Resource<RedisConnection>, key: String) -> Answer<i64> {
        let mut incr = command("INCR");
        incr.arg(key);
        Ok(run(self.redis(&c)?, incr).await)
    }

    async fn del(&mut self, c: Resource<RedisConnection>, keys: Vec<String>) -> Answer<u32> {
        let mut del = command("DEL");
        del.arg(keys);
        Ok(run(self.redis(&c)?, del).await)
    }

    async fn sadd(
        &mut self,
        c: Resource<RedisConnection>,
        key: String,
        values: Vec<String>,
    ) -> Answer<u32> {
        let mut sadd = command("SADD");
        sadd.arg(key).arg(values);
        Ok(run(self.redis(&c)?, sadd).await)
    }

    async fn smembers(&mut self, c: Resource<RedisConnection>, key: String) -> Answer<Vec<String>> {
        let mut smembers = command("SMEMBERS");
        smembers.arg(key);
        Ok(run(self.redis(&c)?, smembers).await)
    }

    async fn srem(
        &mut self,
        c: Resource<RedisConnection>,
        key: String,
        values: Vec<String>,
    ) -> Answer<u32> {
        let mut srem = command("SREM");
        srem.arg(key).arg(values);
        Ok(run(self.redis(&c)?, srem).await)
    }

    async fn execute(
        &mut self,
        c: Resource<RedisConnection>,
        name: String,
        arguments: Vec<RedisParameter>,
    ) -> Answer<Vec<RedisResult>> {
        let mut execute = command(&name);
        for argument in arguments {
            match argument {
                RedisParameter::Int64(number) => execute.arg(number),
                RedisParameter::Binary(bytes) => execute.arg(bytes),
            };
        }
        Ok(run::<Value>(self.redis(&c)?, execute).await.map(results))
    }

    async fn drop(&mut self, c: Resource<RedisConnection>) -> wasmtime::Result<()> {
        self.table.delete(c)?;
        Ok(())
    }
}

/// A reply as the list Spin's `execute` answers: an array's elements in order (nested arrays
/// flattened), anything else as one element.
fn results(value: Value) -> Vec<RedisResult> {
    let mut out = Vec::new();
    flatten(value, &mut out);
    out
}

fn flatten(value: Value, out: &mut Vec<RedisResult>) {
    match value {
        Value::Nil => out.push(RedisResult::Nil),
        Value::Int(number) => out.push(RedisResult::Int64(number)),
        Value::BulkString(bytes) => out.push(RedisResult::Binary(bytes)),
        Value::SimpleString(status) => out.push(RedisResult::Status(status)),
        Value::Okay => out.push(RedisResult::Status("OK".to_owned())),
        Value::Array(values) | Value::Set(values) => {
            for value in values {
                flatten(value, out);
            }
        }
        Value::Map(pairs) => {
            for (key, value) in pairs {
                flatten(key, out);
                flatten(value, out);
            }
        }
        Value::Attribute { data, .. } => flatten(*data, out),
        Value::Double(number) => out.push(RedisResult::Status(number.to_string())),
        Value::Boolean(flag) => out.push(RedisResult::Int64(i64::from(flag))),
        Value::VerbatimString { text, .. } => out.push(RedisResult::Binary(text.into_bytes())),
        other => out.push(RedisResult::Status(format!("{other:?}"))),
    }
}

impl Host for SpinView<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_flatten_as_spin_lists_them() {
        let reply = Value::Array(vec![
            Value::BulkString(b"a".to_vec()),
            Value::Nil,
            Value::Array(vec![Value::Int(3), Value::Okay]),
        ]);
        let listed = results(reply);
        assert!(matches!(
            listed.as_slice(),
            [
                RedisResult::Binary(a),
                RedisResult::Nil,
                RedisResult::Int64(3),
                RedisResult::Status(ok),
            ] if a == b"a" && ok == "OK"
        ));
    }
}

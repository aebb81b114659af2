//! The handshake of both roles, as state machines fed with the bytes that
//! arrive and drained of the bytes to send.
//!
//! ```text
//! 1 A→B  Ya, PadA
//! 2 B→A  Yb, PadB
//! 3 A→B  HASH('req1', S), HASH('req2', SKEY) xor HASH('req3', S),
//!        ENCRYPT(VC, crypto_provide, len(PadC), PadC, len(IA)), ENCRYPT(IA)
//! 4 B→A  ENCRYPT(VC, crypto_select, len(PadD), PadD), ENCRYPT2(payload)
//! 5 A→B  ENCRYPT2(payload)
//! ```
//!
//! B finds `HASH('req1', S)` among at most 512 bytes of PadA, and A finds
//! `ENCRYPT(VC)` among at most 512 bytes of PadB; past that the other side
//! is not speaking MSE. `ENCRYPT2` is RC4 or nothing, as `crypto_select`
//! says.

use rand::Rng;

use crate::Error;
use crate::cipher::{Cipher, req2, sha1, streams};
use crate::dh::{KEY_LEN, PrivateKey};

/// The most padding any of PadA, PadB, PadC and PadD may have.
pub const MAX_PAD: usize = 512;

/// The most bytes an initial payload (IA) may have: its length is two
/// bytes.
pub const MAX_INITIAL_PAYLOAD: usize = u16::MAX as usize;

/// The verification constant: eight zero bytes.
const VC: [u8; 8] = [0; 8];

/// How the payload is carried after the handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// In the clear (only the handshake was obfuscated).
    Plaintext,
    /// Ciphered with RC4.
    Rc4,
}

impl Method {
    fn bit(self) -> u32 {
        match self {
            Method::Plaintext => 0x01,
            Method::Rc4 => 0x02,
        }
    }
}

/// A set of [`Method`]s: what an initiator offers (`crypto_provide`) or a
/// responder accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Methods(u32);

impl Methods {
    /// RC4 only.
    pub const RC4: Methods = Methods(0x02);
    /// Plaintext only.
    pub const PLAINTEXT: Methods = Methods(0x01);
    /// Both.
    pub const BOTH: Methods = Methods(0x03);

    /// Whether `method` is in the set.
    pub fn contains(self, method: Method) -> bool {
        self.0 & method.bit() != 0
    }

    /// The bits as sent on the wire.
    pub fn bits(self) -> u32 {
        self.0
    }
}

/// A finished handshake.
#[derive(Debug)]
pub struct Established {
    /// How the payload goes from now on.
    pub method: Method,
    /// The cipher for what we send, with [`Method::Rc4`].
    pub encrypt: Option<Cipher>,
    /// The cipher for what we receive, with [`Method::Rc4`].
    pub decrypt: Option<Cipher>,
    /// Payload bytes that arrived with the end of the handshake, already
    /// deciphered: they come before anything read from the stream later.
    pub rest: Vec<u8>,
    /// For a responder, the initiator's initial payload (IA), deciphered:
    /// payload too, before `rest`. Empty for an initiator.
    pub initial_payload: Vec<u8>,
    /// SKEY: the info-hash of the torrent the connection is for.
    pub skey: [u8; 20],
}

/// Where a responder looks up the SKEY an initiator asks for, given
/// `HASH('req2', SKEY)` (see [`req2`](crate::req2)).
pub trait Skeys {
    /// The SKEY whose `HASH('req2', SKEY)` is `req2`, if we have it.
    fn find(&self, req2: &[u8; 20]) -> Option<[u8; 20]>;
}

impl<F: Fn(&[u8; 20]) -> Option<[u8; 20]>> Skeys for F {
    fn find(&self, req2: &[u8; 20]) -> Option<[u8; 20]> {
        self(req2)
    }
}

/// A single SKEY: a responder for one torrent.
impl Skeys for [u8; 20] {
    fn find(&self, hash: &[u8; 20]) -> Option<[u8; 20]> {
        (req2(self) == *hash).then_some(*self)
    }
}

/// Bytes received and not yet consumed, with the helpers both roles use.
#[derive(Debug, Default)]
struct Input(Vec<u8>);

impl Input {
    /// The first `n` bytes, taken out, if that many are here.
    fn take(&mut self, n: usize) -> Option<Vec<u8>> {
        (self.0.len() >= n).then(|| self.0.drain(..n).collect())
    }

    /// Finds `marker` within the first `within` bytes (marker included)
    /// and drops everything up to its end. `Ok(false)`: not yet;
    /// an error once `within` bytes came without it.
    fn sync(&mut self, marker: &[u8], within: usize, what: &'static str) -> Result<bool, Error> {
        let searched = &self.0[..self.0.len().min(within)];
        if let Some(at) = searched.windows(marker.len()).position(|w| w == marker) {
            self.0.drain(..at + marker.len());
            return Ok(true);
        }
        if self.0.len() >= within {
            return Err(Error::SyncNotFound(what));
        }
        Ok(false)
    }

    fn take_all(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.0)
    }
}

/// Bytes fed after the end of the handshake: payload, added to what the
/// established connection has not yet given; once it is taken, they
/// belong to its reader.
fn late_payload(result: Option<&mut Established>, data: &[u8]) -> Result<(), Error> {
    let result = result.ok_or(Error::Failed)?;
    let mut data = data.to_vec();
    if let Some(cipher) = &mut result.decrypt {
        cipher.apply(&mut data);
    }
    result.rest.extend(data);
    Ok(())
}

/// The end of a handshake: what else arrived is payload, deciphered if
/// the method is RC4, whose ciphers go on; with plaintext they are
/// dropped.
fn establish(
    method: Method,
    encrypt: &mut Option<Cipher>,
    decrypt: &mut Option<Cipher>,
    input: &mut Input,
    initial_payload: Vec<u8>,
    skey: [u8; 20],
) -> Established {
    let mut rest = input.take_all();
    let (encrypt, decrypt) = match method {
        Method::Rc4 => {
            if let Some(cipher) = decrypt {
                cipher.apply(&mut rest);
            }
            (encrypt.take(), decrypt.take())
        }
        Method::Plaintext => (None, None),
    };
    Established {
        method,
        encrypt,
        decrypt,
        rest,
        initial_payload,
        skey,
    }
}

fn u16_at(bytes: &[u8], at: usize) -> usize {
    usize::from(u16::from_be_bytes([bytes[at], bytes[at + 1]]))
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn random_pad(rng: &mut impl Rng, max: usize) -> Vec<u8> {
    let len = rng.random_range(0..=max);
    let mut pad = vec![0u8; len];
    rng.fill(&mut pad[..]);
    pad
}

#[derive(Debug)]
enum InitiatorState {
    AwaitKey,
    /// Looking for `ENCRYPT(VC)`, whose bytes these are.
    AwaitVc([u8; 8]),
    AwaitSelect,
    AwaitPadD {
        method: Method,
        len: usize,
    },
    Done,
    Failed,
}

/// The side that dialled (A).
pub struct Initiator {
    key: PrivateKey,
    skey: [u8; 20],
    provide: Methods,
    initial_payload: Vec<u8>,
    state: InitiatorState,
    input: Input,
    output: Vec<u8>,
    encrypt: Option<Cipher>,
    decrypt: Option<Cipher>,
    result: Option<Established>,
}

impl std::fmt::Debug for Initiator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Initiator")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl Initiator {
    /// An initiator for the torrent `skey` offering `provide`, sending
    /// `initial_payload` (usually the BitTorrent handshake; at most
    /// [`MAX_INITIAL_PAYLOAD`] bytes) ciphered in its third message. Its
    /// first message (Ya and PadA) is ready in [`Initiator::take_output`].
    pub fn new(
        skey: [u8; 20],
        provide: Methods,
        initial_payload: Vec<u8>,
        rng: &mut impl Rng,
    ) -> Result<Initiator, Error> {
        if initial_payload.len() > MAX_INITIAL_PAYLOAD {
            return Err(Error::InitialPayloadTooLong(initial_payload.len()));
        }
        if provide.0 & Methods::BOTH.0 == 0 {
            return Err(Error::NoMethod);
        }
        let key = PrivateKey::random(rng);
        let mut output = key.public().to_vec();
        output.extend(random_pad(rng, MAX_PAD));
        Ok(Initiator {
            key,
            skey,
            provide,
            initial_payload,
            state: InitiatorState::AwaitKey,
            input: Input::default(),
            output,
            encrypt: None,
            decrypt: None,
            result: None,
        })
    }

    /// Bytes to send now (empty when there are none).
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.output)
    }

    /// Takes bytes that arrived. After an error the handshake is over:
    /// close the connection. Bytes taken once it is done are payload,
    /// added to [`Established::rest`] until that is taken.
    pub fn handle(&mut self, data: &[u8]) -> Result<(), Error> {
        if matches!(self.state, InitiatorState::Failed) {
            return Err(Error::Failed);
        }
        if matches!(self.state, InitiatorState::Done) {
            return late_payload(self.result.as_mut(), data);
        }
        self.input.0.extend_from_slice(data);
        let result = self.advance();
        if result.is_err() {
            self.state = InitiatorState::Failed;
        }
        result
    }

    /// Whether the handshake is done ([`Initiator::established`] has it).
    pub fn is_done(&self) -> bool {
        self.result.is_some()
    }

    /// The finished handshake, once (and only once) it is done.
    pub fn established(&mut self) -> Option<Established> {
        self.result.take()
    }

    fn advance(&mut self) -> Result<(), Error> {
        loop {
            match self.state {
                InitiatorState::AwaitKey => {
                    let Some(theirs) = self.input.take(KEY_LEN) else {
                        return Ok(());
                    };
                    let theirs: [u8; KEY_LEN] = theirs.try_into().map_err(|_| Error::Failed)?;
                    let secret = self.key.shared(&theirs)?;
                    let (mut ours, mut their_stream) = streams(&secret, &self.skey);
                    self.output.extend(sha1(&[b"req1", &secret]));
                    let req3 = sha1(&[b"req3", &secret]);
                    self.output
                        .extend(req2(&self.skey).iter().zip(req3).map(|(a, b)| a ^ b));
                    let mut third = VC.to_vec();
                    third.extend(self.provide.0.to_be_bytes());
                    third.extend(0u16.to_be_bytes()); // no PadC
                    let ia_len = u16::try_from(self.initial_payload.len())
                        .map_err(|_| Error::InitialPayloadTooLong(self.initial_payload.len()))?;
                    third.extend(ia_len.to_be_bytes());
                    third.append(&mut self.initial_payload);
                    ours.apply(&mut third);
                    self.output.extend(third);
                    let mut vc = VC;
                    their_stream.apply(&mut vc);
                    self.encrypt = Some(ours);
                    self.decrypt = Some(their_stream);
                    self.state = InitiatorState::AwaitVc(vc);
                }
                InitiatorState::AwaitVc(vc) => {
                    if !self.input.sync(&vc, MAX_PAD + VC.len(), "ENCRYPT(VC)")? {
                        return Ok(());
                    }
                    self.state = InitiatorState::AwaitSelect;
                }
                InitiatorState::AwaitSelect => {
                    let Some(mut fields) = self.input.take(6) else {
                        return Ok(());
                    };
                    self.decipher(&mut fields);
                    let select = u32_at(&fields, 0);
                    let method = if select == Method::Rc4.bit() {
                        Method::Rc4
                    } else if select == Method::Plaintext.bit() {
                        Method::Plaintext
                    } else {
                        return Err(Error::BadSelect(select));
                    };
                    if !self.provide.contains(method) {
                        return Err(Error::BadSelect(select));
                    }
                    let len = u16_at(&fields, 4);
                    if len > MAX_PAD {
                        return Err(Error::PadTooLong(len));
                    }
                    self.state = InitiatorState::AwaitPadD { method, len };
                }
                InitiatorState::AwaitPadD { method, len } => {
                    let Some(mut pad) = self.input.take(len) else {
                        return Ok(());
                    };
                    self.decipher(&mut pad);
                    self.result = Some(establish(
                        method,
                        &mut self.encrypt,
                        &mut self.decrypt,
                        &mut self.input,
                        Vec::new(),
                        self.skey,
                    ));
                    self.state = InitiatorState::Done;
                }
                InitiatorState::Done | InitiatorState::Failed => return Ok(()),
            }
        }
    }

    fn decipher(&mut self, data: &mut [u8]) {
        if let Some(cipher) = &mut self.decrypt {
            cipher.apply(data);
        }
    }
}

#[derive(Debug)]
enum ResponderState {
    AwaitKey,
    /// Looking for `HASH('req1', S)`.
    AwaitReq1,
    AwaitSkey,
    AwaitVc,
    AwaitPadC {
        provide: Methods,
        len: usize,
    },
    AwaitIa {
        provide: Methods,
        len: usize,
    },
    Done,
    Failed,
}

/// The side that was dialled (B).
pub struct Responder {
    key: PrivateKey,
    accept: Methods,
    prefer: Method,
    pad_b: Vec<u8>,
    secret: [u8; KEY_LEN],
    skey: [u8; 20],
    state: ResponderState,
    input: Input,
    output: Vec<u8>,
    encrypt: Option<Cipher>,
    decrypt: Option<Cipher>,
    result: Option<Established>,
}

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Responder")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl Responder {
    /// A responder that takes the methods in `accept`, choosing `prefer`
    /// when the initiator offers both.
    pub fn new(accept: Methods, prefer: Method, rng: &mut impl Rng) -> Responder {
        Responder {
            key: PrivateKey::random(rng),
            accept,
            prefer,
            pad_b: random_pad(rng, MAX_PAD),
            secret: [0; KEY_LEN],
            skey: [0; 20],
            state: ResponderState::AwaitKey,
            input: Input::default(),
            output: Vec::new(),
            encrypt: None,
            decrypt: None,
            result: None,
        }
    }

    /// Bytes to send now (empty when there are none).
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.output)
    }

    /// Takes bytes that arrived, finding the torrent asked for in
    /// `skeys`. After an error the handshake is over: close the
    /// connection. Bytes taken once it is done are payload, added to
    /// [`Established::rest`] until that is taken.
    pub fn handle(&mut self, data: &[u8], skeys: &impl Skeys) -> Result<(), Error> {
        if matches!(self.state, ResponderState::Failed) {
            return Err(Error::Failed);
        }
        if matches!(self.state, ResponderState::Done) {
            return late_payload(self.result.as_mut(), data);
        }
        self.input.0.extend_from_slice(data);
        let result = self.advance(skeys);
        if result.is_err() {
            self.state = ResponderState::Failed;
        }
        result
    }

    /// Whether the handshake is done ([`Responder::established`] has it).
    pub fn is_done(&self) -> bool {
        self.result.is_some()
    }

    /// The finished handshake, once (and only once) it is done.
    pub fn established(&mut self) -> Option<Established> {
        self.result.take()
    }

    fn advance(&mut self, skeys: &impl Skeys) -> Result<(), Error> {
        loop {
            match self.state {
                ResponderState::AwaitKey => {
                    let Some(theirs) = self.input.take(KEY_LEN) else {
                        return Ok(());
                    };
                    let theirs: [u8; KEY_LEN] = theirs.try_into().map_err(|_| Error::Failed)?;
                    self.secret = self.key.shared(&theirs)?;
                    self.output.extend(self.key.public());
                    self.output.append(&mut self.pad_b);
                    self.state = ResponderState::AwaitReq1;
                }
                ResponderState::AwaitReq1 => {
                    let req1 = sha1(&[b"req1", &self.secret]);
                    if !self
                        .input
                        .sync(&req1, MAX_PAD + req1.len(), "HASH('req1', S)")?
                    {
                        return Ok(());
                    }
                    self.state = ResponderState::AwaitSkey;
                }
                ResponderState::AwaitSkey => {
                    let Some(hidden) = self.input.take(20) else {
                        return Ok(());
                    };
                    let req3 = sha1(&[b"req3", &self.secret]);
                    let mut asked = [0u8; 20];
                    for (i, byte) in asked.iter_mut().enumerate() {
                        *byte = hidden[i] ^ req3[i];
                    }
                    self.skey = skeys.find(&asked).ok_or(Error::UnknownSkey)?;
                    let (theirs, ours) = streams(&self.secret, &self.skey);
                    self.decrypt = Some(theirs);
                    self.encrypt = Some(ours);
                    self.state = ResponderState::AwaitVc;
                }
                ResponderState::AwaitVc => {
                    let Some(mut fields) = self.input.take(VC.len() + 6) else {
                        return Ok(());
                    };
                    self.decipher(&mut fields);
                    if fields[..VC.len()] != VC {
                        return Err(Error::BadVc);
                    }
                    let provide = Methods(u32_at(&fields, 8));
                    let len = u16_at(&fields, 12);
                    if len > MAX_PAD {
                        return Err(Error::PadTooLong(len));
                    }
                    self.state = ResponderState::AwaitPadC { provide, len };
                }
                ResponderState::AwaitPadC { provide, len } => {
                    let Some(mut pad_and_len) = self.input.take(len + 2) else {
                        return Ok(());
                    };
                    self.decipher(&mut pad_and_len);
                    let len = u16_at(&pad_and_len, len);
                    self.state = ResponderState::AwaitIa { provide, len };
                }
                ResponderState::AwaitIa { provide, len } => {
                    let Some(mut initial_payload) = self.input.take(len) else {
                        return Ok(());
                    };
                    self.decipher(&mut initial_payload);
                    let method = self.choose(provide)?;
                    let mut fourth = VC.to_vec();
                    fourth.extend(method.bit().to_be_bytes());
                    fourth.extend(0u16.to_be_bytes()); // no PadD
                    if let Some(cipher) = &mut self.encrypt {
                        cipher.apply(&mut fourth);
                    }
                    self.output.extend(fourth);
                    self.result = Some(establish(
                        method,
                        &mut self.encrypt,
                        &mut self.decrypt,
                        &mut self.input,
                        initial_payload,
                        self.skey,
                    ));
                    self.state = ResponderState::Done;
                }
                ResponderState::Done | ResponderState::Failed => return Ok(()),
            }
        }
    }

    /// Our preference if offered and accepted, else the other method.
    fn choose(&self, provide: Methods) -> Result<Method, Error> {
        let other = match self.prefer {
            Method::Rc4 => Method::Plaintext,
            Method::Plaintext => Method::Rc4,
        };
        [self.prefer, other]
            .into_iter()
            .find(|m| provide.contains(*m) && self.accept.contains(*m))
            .ok_or(Error::NoCommonMethod {
                offered: provide.0,
                accepted: self.accept.0,
            })
    }

    fn decipher(&mut self, data: &mut [u8]) {
        if let Some(cipher) = &mut self.decrypt {
            cipher.apply(data);
        }
    }
}

#[cfg(test)]
mod tests;

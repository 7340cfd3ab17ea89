//! Just enough DER to find a certificate's public key: webpki refuses X.509
//! v1 certificates (still common in test PKIs, and accepted by OpenSSL, so by
//! Node), and the key is all a handshake signature check needs.

/// One DER element (tag, length, contents) at the start of a buffer.
struct Element<'a> {
    tag: u8,
    whole: &'a [u8],
    contents: &'a [u8],
    rest: &'a [u8],
}

/// The first DER element of `der`.
fn element(der: &[u8]) -> Option<Element<'_>> {
    let tag = *der.first()?;
    let first = *der.get(1)?;
    let (len, header) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let len = (0..n).try_fold(0usize, |len, i| {
            Some(len << 8 | usize::from(*der.get(2 + i)?))
        })?;
        (len, 2 + n)
    };
    let end = header.checked_add(len)?;
    (end <= der.len()).then(|| Element {
        tag,
        whole: &der[..end],
        contents: &der[header..end],
        rest: &der[end..],
    })
}

const SEQUENCE: u8 = 0x30;
/// `[0] EXPLICIT Version`, absent in v1 certificates.
const VERSION: u8 = 0xa0;

/// The DER `SubjectPublicKeyInfo` of a certificate, any version (RFC 5280
/// §4.1: it follows serialNumber, signature, issuer, validity and subject).
pub(crate) fn subject_public_key_info(cert: &[u8]) -> Option<&[u8]> {
    let sequence = |der| element(der).filter(|e| e.tag == SEQUENCE);
    let tbs = sequence(sequence(cert)?.contents)?.contents;
    let mut rest = tbs;
    if rest.first() == Some(&VERSION) {
        rest = element(rest)?.rest;
    }
    for _ in 0..5 {
        rest = element(rest)?.rest;
    }
    Some(sequence(rest)?.whole)
}

/// The key itself: the `subjectPublicKey` BIT STRING of a DER
/// `SubjectPublicKeyInfo`, whatever algorithm parameters name it.
pub(crate) fn public_key_bits(spki: &[u8]) -> Option<&[u8]> {
    const BIT_STRING: u8 = 0x03;
    let fields = element(spki).filter(|e| e.tag == SEQUENCE)?.contents;
    let key = element(element(fields)?.rest).filter(|e| e.tag == BIT_STRING)?;
    Some(key.contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPKI: [u8; 9] = [0x30, 0x07, 0x30, 0x00, 0x03, 0x03, 0x00, 0xaa, 0xbb];

    #[test]
    fn public_key_bits_are_the_bit_string() {
        assert_eq!(public_key_bits(&SPKI), Some(&[0x00, 0xaa, 0xbb][..]));
        assert_eq!(public_key_bits(&[0x30, 0x02, 0x30, 0x00]), None);
    }

    /// Certificate { tbs { [version], serial, sig, issuer, validity, subject, spki }, sigAlg, sig }
    fn certificate(version: bool) -> Vec<u8> {
        let mut tbs = Vec::new();
        if version {
            tbs.extend([0xa0, 0x03, 0x02, 0x01, 0x02]);
        }
        tbs.extend([0x02, 0x01, 0x07]); // serialNumber
        for _ in 0..4 {
            tbs.extend([0x30, 0x00]); // signature, issuer, validity, subject
        }
        tbs.extend(SPKI);
        let mut certificate = vec![0x30, tbs.len() as u8];
        certificate.extend(tbs);
        certificate.extend([0x30, 0x00, 0x03, 0x01, 0x00]);
        let mut der = vec![0x30, certificate.len() as u8];
        der.extend(certificate);
        der
    }

    #[test]
    fn finds_the_key_of_a_v3_certificate() {
        assert_eq!(subject_public_key_info(&certificate(true)), Some(&SPKI[..]));
    }

    #[test]
    fn finds_the_key_of_a_v1_certificate() {
        assert_eq!(
            subject_public_key_info(&certificate(false)),
            Some(&SPKI[..])
        );
    }

    #[test]
    fn long_form_lengths_are_read() {
        assert_eq!(
            element(&[0x04, 0x81, 0x01, 0xff]).map(|e| e.contents),
            Some(&[0xff][..])
        );
        assert_eq!(
            element(&[0x04, 0x82, 0x00, 0x01, 0xee]).map(|e| e.contents),
            Some(&[0xee][..])
        );
    }

    #[test]
    fn truncated_input_is_none() {
        let der = certificate(true);
        assert_eq!(subject_public_key_info(&der[..der.len() - 3]), None);
        assert_eq!(subject_public_key_info(&[0x30]), None);
        assert!(element(&[0x04, 0x85, 1, 1, 1, 1, 1]).is_none());
    }
}

//! `grub.cfg`: boot the one kernel at once, talking on the serial console.

use super::{INITRD_PATH, KERNEL_PATH};

/// Characters GRUB's script parser takes literally in an unquoted word.
fn is_plain(character: char) -> bool {
    character.is_ascii_alphanumeric() || "_-+=.,:/@%".contains(character)
}

/// `word` as one GRUB script word: as is when plain, otherwise in single
/// quotes (literal up to the next quote), with `'` written as `'\''`.
fn quote(word: &str) -> String {
    if word.chars().all(is_plain) {
        return word.to_owned();
    }
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// The text of `grub.cfg`: serial console (COM1, 115200 baud) and screen,
/// no menu delay, and one entry that boots [`KERNEL_PATH`] with
/// [`INITRD_PATH`] and the kernel command line `cmdline`. GRUB joins the
/// words of the `linux` line with single spaces, so the kernel sees
/// `cmdline`'s words as given, quotes included.
pub fn config(cmdline: &str) -> String {
    let mut linux = format!("/{KERNEL_PATH}");
    for word in cmdline.split_whitespace() {
        linux.push(' ');
        linux.push_str(&quote(word));
    }
    format!(
        "serial --unit=0 --speed=115200\n\
         terminal_input serial console\n\
         terminal_output serial console\n\
         timeout=0\n\
         menuentry 'ossify' {{\n\
         \tlinux {linux}\n\
         \tinitrd /{INITRD_PATH}\n\
         }}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boots_the_kernel_with_its_command_line_on_serial() {
        assert_eq!(
            config("console=ttyS0 panic=-1"),
            "serial --unit=0 --speed=115200\n\
             terminal_input serial console\n\
             terminal_output serial console\n\
             timeout=0\n\
             menuentry 'ossify' {\n\
             \tlinux /boot/kernel console=ttyS0 panic=-1\n\
             \tinitrd /boot/initrd.img\n\
             }\n"
        );
    }

    #[test]
    fn quotes_words_grub_would_interpret() {
        let text = config("init=/bin/sh x=\"a;b\" $HOME it's  {x}");
        let linux = text.lines().find(|line| line.contains("linux")).unwrap();
        assert_eq!(
            linux,
            r#"	linux /boot/kernel init=/bin/sh 'x="a;b"' '$HOME' 'it'\''s' '{x}'"#
        );
    }
}

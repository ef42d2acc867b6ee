//! `grub.cfg`: boot the one kernel at once, talking on the serial console.

/// Characters GRUB's script parser takes literally in an unquoted word.
fn is_plain(character: char) -> bool {
    character.is_ascii_alphanumeric() || "_-+=.,:/@%".contains(character)
}

/// `word` as one GRUB script word: as is when plain, otherwise in single
/// quotes (literal up to the next quote), with `'` written as `'\''`.
fn quote(word: &str) -> String {
    if !word.is_empty() && word.chars().all(is_plain) {
        return word.to_owned();
    }
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// `cmdline`'s arguments as the kernel parses them: split at whitespace
/// outside double quotes, the quotes removed.
fn kernel_arguments(cmdline: &str) -> Vec<String> {
    let mut arguments = Vec::new();
    let mut argument: Option<String> = None;
    let mut quoted = false;
    for character in cmdline.chars() {
        match character {
            '"' => {
                quoted = !quoted;
                argument.get_or_insert_default();
            }
            _ if character.is_whitespace() && !quoted => arguments.extend(argument.take()),
            _ => argument.get_or_insert_default().push(character),
        }
    }
    arguments.extend(argument);
    arguments
}

/// The text of `grub.cfg`: serial console (COM1, 115200 baud) and screen,
/// no menu delay, and one entry that boots the kernel at `kernel` with the
/// initrd at `initrd` (paths on the first partition) and the kernel command
/// line `cmdline`.
///
/// Each of `cmdline`'s arguments becomes one word of the `linux` command;
/// GRUB puts double quotes around an argument with spaces when it hands
/// them to the kernel, so the kernel parses the same arguments, though not
/// necessarily the same text (`x="a b"` arrives as `"x=a b"`). GRUB also
/// puts a backslash before every `'`, `"` and `\` left in an argument.
pub fn config(kernel: &str, initrd: &str, cmdline: &str) -> String {
    let mut linux = format!("/{kernel}");
    for argument in kernel_arguments(cmdline) {
        linux.push(' ');
        linux.push_str(&quote(&argument));
    }
    format!(
        "serial --unit=0 --speed=115200\n\
         terminal_input serial console\n\
         terminal_output serial console\n\
         timeout=0\n\
         menuentry 'ossify' {{\n\
         \tlinux {linux}\n\
         \tinitrd /{initrd}\n\
         }}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boots_the_kernel_with_its_command_line_on_serial() {
        assert_eq!(
            config("boot/kernel", "boot/initrd.img", "console=ttyS0 panic=-1"),
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
        let text = config(
            "boot/kernel",
            "boot/initrd.img",
            "init=/bin/sh x=\"a;b c\" $HOME it's {x} \"\"  ",
        );
        let linux = text.lines().find(|line| line.contains("linux")).unwrap();
        assert_eq!(
            linux,
            r"	linux /boot/kernel init=/bin/sh 'x=a;b c' '$HOME' 'it'\''s' '{x}' ''"
        );
    }
}
